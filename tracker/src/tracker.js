/* TraceGlider browser tracker: one self-contained function, no dependencies.
 * Size is the first design goal (see ../ARCHITECTURE.md): browser globals are
 * copied to locals so esbuild can shorten them, and every entry point is guarded
 * so that nothing here can ever throw into the page. */
(() => {
  const w = window, d = document, n = navigator, l = location, M = Math, now = Date.now, J = JSON.stringify,
    // Wraps a function so that it never throws; every listener and API goes through it.
    g = (f) => (...a) => { try { return f(...a) } catch (_) {} }

  g(() => {
    if (w.traceglider) return // loaded twice: the first copy keeps the page
    const S = d.currentScript || d.querySelector('script[data-site]'),
      A = (k) => S.getAttribute('data-' + k),
      yes = (k) => A(k) == 'true',
      site = A('site') || l.hostname,
      api = new URL(A('api') || '/collect', A('api') ? l : S.src),
      H = yes('hash'),
      auto = A('auto') != 'false',
      req = A('consent') == 'required',
      QA = (A('query-allow') || '').split(','),
      DL = RegExp('\\.(' + (A('downloads') ||
        'pdf|zip|t?gz|7z|rar|dmg|exe|msi|apk|csv|xlsx?|docx?|pptx?|txt|mp[34]|mov'
      ).replace(/[\s,.]+/g, '|') + ')$', 'i'),
      X = (A('exclude') || '').split(/\s*,\s*/).filter((p) => p).map((p) => RegExp('^' + p.replace(/\*+/g, '.*') + '$')),
      // GPC / DNT: the collector reads Sec-GPC and DNT and goes cookieless;
      // data-gpc="drop" asks for nothing to be sent at all.
      off = A('gpc') == 'drop' && (n.globalPrivacyControl || n.doNotTrack == '1') ||
        !yes('localhost') && (/^(localhost$|127\.|\[::1\])/.test(l.hostname) || l.protocol == 'file:'),
      on = (t, e, f) => t.addEventListener(e, g(f), { passive: !0 }),
      vis = () => d.visibilityState == 'visible',
      key = () => l.pathname + (H ? l.hash : ''),
      cut = (s) => ('' + s).slice(0, 2e3),
      // Query hygiene: only utm_*, ref and data-query-allow survive; no fragment
      // unless the site routes by hash. Tokens and e-mails in URLs stay home.
      clean = (u) => {
        u = new URL(u, l)
        const q = new URLSearchParams
        u.searchParams.forEach((v, k) => (/^(utm_|ref$)/.test(k) || QA.includes(k)) && q.append(k, v))
        u.search = q
        H || (u.hash = '')
        return cut(u.href)
      },
      // Props the collector accepts: at most 30, each a string, boolean or finite number.
      sp = (o, r, i = 0) => {
        for (const k in o) {
          const v = o[k]
          i < 30 && /^[sbn]/.test(typeof v) && J(v) != 'null' && ((r = r || {})[k] = v.slice ? cut(v) : v, i++)
        }
        return r
      },
      page = (u) => (u = clean(u || l), {
        u, t: cut(d.title), d: 0, s: 0, x: X.some((r) => r.test((u = new URL(u)).pathname + u.hash))
      }),
      ref = d.referrer && clean(d.referrer) || void 0,
      K = M.random().toString(36).slice(2) + now().toString(36) + '-'

    let Q = [], T, R, RT, L = Promise.resolve(), N = 0, P, P0, last, ok = !req, t0 = 0, acc = 0, ST, V, errs = 0,
      lcp, cls = 0, sv = 0, s0, s1, inp

    const ctx = () => {
        const s = screen, u = n.userAgentData
        return {
          sw: s.width, sh: s.height, vw: w.innerWidth, vh: w.innerHeight, dpr: w.devicePixelRatio,
          lang: n.language, tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
          cs: matchMedia('(prefers-color-scheme:dark)').matches ? 'dark' : 'light',
          touch: n.maxTouchPoints, conn: n.connection?.effectiveType,
          mobile: u?.mobile, platform: u?.platform, brands: u?.brands.map((b) => b.brand).join(';'),
          wd: n.webdriver
        }
      },
      // A string body goes out as text/plain, a CORS-safelisted type: no preflight.
      // L settles once every request sent so far has: a consent change waits for it, so
      // no older answer's Set-Cookie can land after the change.
      send = (u, body) => {
        const p = fetch(u, { method: 'POST', body, keepalive: !0, credentials: 'include' })
        L = Promise.allSettled([L, p])
        return p
      },
      post = (ev, body, retried) => send(api, body)
        .catch(() => retried || (R = ev, RT = setTimeout(() => { R = 0; post(ev, body, 1) }, 1500 + M.random() * 1e3))),
      flush = (beacon) => {
        clearTimeout(T); T = 0
        if (ok) {
          if (R) Q = R.concat(Q), R = 0, clearTimeout(RT)
          const ev = Q.splice(0, 100), body = J({ site, ctx: ctx(), events: ev })
          ev[0] && (beacon && n.sendBeacon?.(api, body) || post(ev, body))
        }
      },
      ev = (type, x, p = P || page()) => {
        if (!off && !p.x && Q.length < 100) {
          Q.push({ id: K + ++N, type, ts: now(), url: p.u, ref, title: p.t, ...x })
          ok && (Q.length > 9 ? flush() : T || (T = setTimeout(g(flush), 1e3)))
        }
      },
      depth = () => {
        ST = 0
        const y = d.documentElement.scrollHeight
        P && y && (P.d = M.max(P.d, M.min(100, M.round((w.scrollY + w.innerHeight) / y * 100))))
      },
      // Scroll only arms a timer: at most one layout read per 250 ms.
      onScroll = () => ST || (ST = setTimeout(g(depth), 250)),
      pause = () => { t0 && (acc += now() - t0); t0 = 0 },
      run = () => { t0 || vis() && (t0 = now()) },
      eng = (measure) => {
        if (P) {
          measure && depth()
          pause()
          ;(acc > 0 || P.d > P.s) && ev('engagement', { scroll: P.d, eng: M.round(acc) }, P)
          P.s = P.d; acc = 0
          run()
        }
      },
      pv = (o) => {
        eng()
        P = page(o?.url); P0 = P0 || P; last = key()
        ev('pageview', { props: sp(o?.props) })
        onScroll()
      },
      route = () => auto && key() != last && pv(),
      vt = (metric, v, p = P0) => v >= 0 && ev('vital', { metric, value: M.round(v * 1e3) / 1e3 }, p),
      hide = () => {
        eng(1)
        V || (vt('LCP', lcp), vt('CLS', cls), vt('INP', inp), V = 1)
        flush(1)
      },
      po = g((type, f, o) => new PerformanceObserver(g((x) => x.getEntries().forEach(f)))
        .observe({ type, buffered: !0, ...o })),
      err = (message, source, line, col) =>
        errs++ < 10 && ev('error', { name: 'JS Error', props: sp({ message, source, line, col }) }),
      click = (e) => {
        if (e.type == 'click' || e.button == 1) {
          const t = e.target, m = t.closest('[data-tg-event]'), a = t.closest('a[href]'), p = {}
          if (m) {
            for (const at of m.attributes) at.name.startsWith('data-tg-prop-') && (p[at.name.slice(13)] = at.value)
            ev('click', { name: cut(m.getAttribute('data-tg-event')), props: sp(p) })
          } else if (a && /^http/.test(a.protocol)) {
            const dl = a.hasAttribute('download') || DL.test(a.pathname)
            ;(dl || a.host != l.host) && ev('click', { name: dl ? 'File Download' : 'Outbound Link: Click', props: { url: clean(a.href) } })
          }
        }
      },
      start = () => { run(); auto && pv() }

    w.traceglider = {
      track: g((name, props) => name && ev('custom', { name: cut(name), props: sp(props) })),
      pageview: g(pv),
      consent: g((v) => {
        if (off) return
        // Batches wait until the answer's Set-Cookie (or its removal) has landed.
        ok = 0
        req && v != 'granted' && (Q = [])
        // JSON as text/plain, like /collect: a CORS-safelisted type needs no preflight.
        L.then(() => send(new URL('consent', api), J({ site, consent: v })))
          .catch(() => 0).then(g(() => (v == 'granted' || !req) && (ok = 1, flush())))
      })
    }

    if (auto) {
      for (const k of ['pushState', 'replaceState']) {
        const h = history, o = h[k]
        h[k] = function () { const r = o.apply(this, arguments); g(route)(); return r }
      }
      on(w, 'popstate', route)
      H && on(w, 'hashchange', route)
      on(w, 'pageshow', (e) => e.persisted && pv()) // back from the bfcache: a new view
    }
    on(w, 'scroll', onScroll)
    on(d, 'visibilitychange', () => vis() ? run() : hide())
    on(w, 'pagehide', hide)
    on(w, 'blur', pause)
    on(w, 'focus', run)
    on(d, 'click', click)
    on(d, 'auxclick', click)
    on(d, 'submit', (e) => {
      // Attributes, not properties: an input named "action" or "id" shadows those.
      const a = (k) => e.target.getAttribute(k) || ''
      ev('form_submit', { name: 'Form: Submit', props: { form_id: a('id'), form_name: a('name'), action: clean(a('action')) } })
    })
    if (yes('errors')) {
      on(w, 'error', (e) => err(e.message, e.filename, e.lineno, e.colno))
      on(w, 'unhandledrejection', (e) => err('' + e.reason))
    }

    // Web Vitals, the web-vitals way but minimal: LCP, CLS and INP are final when
    // the page is first hidden; FCP and TTFB are known early and ride the first batch.
    if (vis()) {
      po('paint', (e) => e.name == 'first-contentful-paint' && vt('FCP', e.startTime))
      po('largest-contentful-paint', (e) => { lcp = e.startTime })
    }
    po('layout-shift', (e) => {
      if (!e.hadRecentInput) {
        const t = e.startTime
        t - s1 < 1e3 && t - s0 < 5e3 ? sv += e.value : (sv = e.value, s0 = t)
        s1 = t; cls = M.max(cls, sv)
      }
    })
    po('event', (e) => { e.interactionId && (inp = M.max(inp || 0, e.duration)) }, { durationThreshold: 16 })

    d.prerendering ? on(d, 'prerenderingchange', start) : start()
    vt('TTFB', performance.getEntriesByType('navigation')[0]?.responseStart)
  })()
})()
