// Builds src/tracker.js into ../traceglider/static/t.min.js and reports its size.
// `node build.mjs --check` builds in memory and fails when the committed file differs.
// `node build.mjs --stdout` writes the fresh build to stdout (used by the Python test).
import { build } from 'esbuild'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { gzipSync, brotliCompressSync, constants } from 'node:zlib'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, '..', 'traceglider', 'static', 't.min.js')
const BUDGET = 3000 // bytes, gzip -9

const result = await build({
  entryPoints: [join(here, 'src', 'tracker.js')],
  bundle: false,
  minify: true,
  target: 'es2020',
  charset: 'utf8',
  legalComments: 'none',
  write: false,
  logLevel: 'warning',
})
const code = result.outputFiles[0].contents
const mode = process.argv[2]

if (mode === '--stdout') {
  process.stdout.write(code)
} else if (mode === '--check') {
  let committed = null
  try { committed = readFileSync(out) } catch {}
  if (!committed || Buffer.compare(committed, Buffer.from(code)) !== 0) {
    console.error('traceglider/static/t.min.js is stale: run `npm run build --prefix tracker`')
    process.exit(1)
  }
  console.log('t.min.js is up to date')
} else {
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, code)
}
if (mode !== '--stdout') {
  const gz = gzipSync(code, { level: 9 }).length
  const br = brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length
  console.log(`t.min.js: ${code.length} B raw, ${gz} B gzip -9, ${br} B brotli (budget ${BUDGET} B gzip)`)
  if (gz > BUDGET) { console.error('over the size budget'); process.exit(1) }
}
