/* TraceGlider browser tracker: one self-contained function, no dependencies.
 * Size is the first design goal (see ../ARCHITECTURE.md): browser globals are
 * copied to locals so esbuild can shorten them (it renames every local, so the
 * names here are for people), and every entry point is guarded so that nothing
 * here can ever throw into the page. */
(() => {
  const win = window, doc = document, nav = navigator, loc = location, math = Math, now = Date.now,
    json = JSON.stringify,
    // Wraps a function so that it never throws; every listener and API goes through it.
    guard = (f) => (...args) => { try { return f(...args) } catch (_) {} }

  guard(() => {
    if (win.traceglider) return // loaded twice: the first copy keeps the page
    const script = doc.currentScript || doc.querySelector('script[data-site]'),
      attr = (name) => script.getAttribute('data-' + name),
      isTrue = (name) => attr(name) == 'true',
      site = attr('site') || loc.hostname,
      api = new URL(attr('api') || '/collect', attr('api') ? loc : script.src),
      hashRoutes = isTrue('hash'),
      auto = attr('auto') != 'false',
      consentRequired = attr('consent') == 'required',
      queryAllow = (attr('query-allow') || '').split(','),
      downloads = RegExp('\\.(' + (attr('downloads') ||
        'pdf|zip|t?gz|7z|rar|dmg|exe|msi|apk|csv|xlsx?|docx?|pptx?|txt|mp[34]|mov'
      ).replace(/[\s,.]+/g, '|') + ')$', 'i'),
      excluded = (attr('exclude') || '').split(/\s*,\s*/).filter((glob) => glob)
        .map((glob) => RegExp('^' + glob.replace(/\*+/g, '.*') + '$')),
      // GPC / DNT: the collector reads Sec-GPC and DNT and goes cookieless;
      // data-gpc="drop" asks for nothing to be sent at all.
      silent = attr('gpc') == 'drop' && (nav.globalPrivacyControl || nav.doNotTrack == '1') ||
        !isTrue('localhost') && (/^(localhost$|127\.|\[::1\])/.test(loc.hostname) || loc.protocol == 'file:'),
      on = (target, type, f) => target.addEventListener(type, guard(f), { passive: !0 }),
      visible = () => doc.visibilityState == 'visible',
      routeKey = () => loc.pathname + (hashRoutes ? loc.hash : ''),
      cap = (text) => ('' + text).slice(0, 2e3),
      // Query hygiene: only utm_*, ref and data-query-allow survive; no fragment
      // unless the site routes by hash. Tokens and e-mails in URLs stay home.
      clean = (url) => {
        url = new URL(url, loc)
        const kept = new URLSearchParams
        url.searchParams.forEach((v, k) => (/^(utm_|ref$)/.test(k) || queryAllow.includes(k)) && kept.append(k, v))
        url.search = kept
        hashRoutes || (url.hash = '')
        return cap(url.href)
      },
      // Props the collector accepts: at most 30, each a string, boolean or finite number.
      cleanProps = (given, out, count = 0) => {
        for (const k in given) {
          const v = given[k]
          count < 30 && /^[sbn]/.test(typeof v) && json(v) != 'null' && ((out = out || {})[k] = v.slice ? cap(v) : v, count++)
        }
        return out
      },
      // The page being viewed. Its fields keep one letter (esbuild never renames
      // properties): u = clean URL, t = title, d = deepest scroll, s = deepest scroll
      // already sent, x = excluded by data-exclude.
      page = (href) => (href = clean(href || loc), {
        u: href, t: cap(doc.title), d: 0, s: 0,
        x: excluded.some((re) => re.test((href = new URL(href)).pathname + href.hash))
      }),
      referrer = doc.referrer && clean(doc.referrer) || void 0,
      idPrefix = math.random().toString(36).slice(2) + now().toString(36) + '-'

    let queue = [], flushTimer, settled = Promise.resolve(), seq = 0, current, first, lastRoute,
      ready = !consentRequired, activeSince = 0, activeMs = 0, scrollTimer, vitalsSent, errorCount = 0,
      // Refused or failed sends: the next flush waits until `holdUntil` (a Retry-After).
      failures = 0, holdUntil = 0,
      lcp, cls = 0, shiftSum = 0, shiftStart, shiftLast, inp

    const context = () => {
        const screen_ = screen, hints = nav.userAgentData
        return {
          sw: screen_.width, sh: screen_.height, vw: win.innerWidth, vh: win.innerHeight, dpr: win.devicePixelRatio,
          lang: nav.language, tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
          cs: matchMedia('(prefers-color-scheme:dark)').matches ? 'dark' : 'light',
          touch: nav.maxTouchPoints, conn: nav.connection?.effectiveType,
          mobile: hints?.mobile, platform: hints?.platform, brands: hints?.brands.map((b) => b.brand).join(';'),
          wd: nav.webdriver
        }
      },
      // A string body goes out as text/plain, a CORS-safelisted type: no preflight.
      // `settled` settles once every request sent so far has: a consent change waits
      // for it, so no older answer's Set-Cookie can land after the change.
      send = (url, body) => {
        const request = fetch(url, { method: 'POST', body, keepalive: !0, credentials: 'include' })
        settled = Promise.allSettled([settled, request])
        return request
      },
      // A network failure, a 429 or a 5xx keeps the batch: it goes back to the front of
      // the queue and is sent again after the answer's Retry-After (else 1.5-2.5 s,
      // doubling), or at once in the beacon if the page hides first. Five failures in
      // a row give up. Other answers (a 400: the batch itself is wrong) are final.
      post = (events, body) => send(api, body)
        .then((answer) => { if (answer.status == 429 || answer.status > 499) throw answer; failures = 0 })
        .catch((answer) => ++failures < 6 && (queue = events.concat(queue), holdUntil = now() +
          1e3 * (+answer.headers?.get('Retry-After') || (1.5 + math.random()) * 2 ** failures / 2), flush())),
      flush = (beacon) => {
        clearTimeout(flushTimer); flushTimer = 0
        if (ready) {
          if (!beacon && now() < holdUntil) return void (flushTimer = setTimeout(guard(flush), holdUntil - now()))
          const events = queue.splice(0, 100), body = json({ site, ctx: context(), events })
          events[0] && (beacon && nav.sendBeacon?.(api, body) || post(events, body))
        }
      },
      queueEvent = (type, fields, view = current || page()) => {
        if (!silent && !view.x && queue.length < 100) {
          queue.push({ id: idPrefix + ++seq, type, ts: now(), url: view.u, ref: referrer, title: view.t, ...fields })
          ready && (queue.length > 9 ? flush() : flushTimer || (flushTimer = setTimeout(guard(flush), 1e3)))
        }
      },
      depth = () => {
        scrollTimer = 0
        const height = doc.documentElement.scrollHeight
        current && height && (current.d = math.max(current.d,
          math.min(100, math.round((win.scrollY + win.innerHeight) / height * 100))))
      },
      // Scroll only arms a timer: at most one layout read per 250 ms.
      onScroll = () => scrollTimer || (scrollTimer = setTimeout(guard(depth), 250)),
      pause = () => { activeSince && (activeMs += now() - activeSince); activeSince = 0 },
      resume = () => { activeSince || visible() && (activeSince = now()) },
      engagement = (measure) => {
        if (current) {
          measure && depth()
          pause()
          ;(activeMs > 0 || current.d > current.s) &&
            queueEvent('engagement', { scroll: current.d, eng: math.round(activeMs) }, current)
          current.s = current.d; activeMs = 0
          resume()
        }
      },
      pageview = (options) => {
        engagement()
        current = page(options?.url); first = first || current; lastRoute = routeKey()
        queueEvent('pageview', { props: cleanProps(options?.props) })
        onScroll()
      },
      route = () => auto && routeKey() != lastRoute && pageview(),
      vital = (metric, value, view = first) =>
        value >= 0 && queueEvent('vital', { metric, value: math.round(value * 1e3) / 1e3 }, view),
      hide = () => {
        engagement(1)
        vitalsSent || (vital('LCP', lcp), vital('CLS', cls), vital('INP', inp), vitalsSent = 1)
        flush(1)
      },
      observe = guard((type, f, options) => new PerformanceObserver(guard((list) => list.getEntries().forEach(f)))
        .observe({ type, buffered: !0, ...options })),
      error = (message, source, line, col) =>
        errorCount++ < 10 && queueEvent('error', { name: 'JS Error', props: cleanProps({ message, source, line, col }) }),
      click = (e) => {
        if (e.type == 'click' || e.button == 1) {
          const target = e.target, marked = target.closest('[data-tg-event]'), link = target.closest('a[href]'), props = {}
          if (marked) {
            for (const a of marked.attributes) a.name.startsWith('data-tg-prop-') && (props[a.name.slice(13)] = a.value)
            queueEvent('click', { name: cap(marked.getAttribute('data-tg-event')), props: cleanProps(props) })
          } else if (link && /^http/.test(link.protocol)) {
            const download = link.hasAttribute('download') || downloads.test(link.pathname)
            ;(download || link.host != loc.host) && queueEvent('click', {
              name: download ? 'File Download' : 'Outbound Link: Click', props: { url: clean(link.href) }
            })
          }
        }
      },
      start = () => { resume(); auto && pageview() }

    win.traceglider = {
      track: guard((name, props) => name && queueEvent('custom', { name: cap(name), props: cleanProps(props) })),
      pageview: guard(pageview),
      consent: guard((choice) => {
        if (silent) return
        // Batches wait until the answer's Set-Cookie (or its removal) has landed.
        ready = 0
        consentRequired && choice != 'granted' && (queue = [])
        // JSON as text/plain, like /collect: a CORS-safelisted type needs no preflight.
        settled.then(() => send(new URL('consent', api), json({ site, consent: choice })))
          .catch(() => 0).then(guard(() => (choice == 'granted' || !consentRequired) && (ready = 1, flush())))
      })
    }

    if (auto) {
      for (const name of ['pushState', 'replaceState']) {
        const hist = history, original = hist[name]
        hist[name] = function () { const result = original.apply(this, arguments); guard(route)(); return result }
      }
      on(win, 'popstate', route)
      hashRoutes && on(win, 'hashchange', route)
      on(win, 'pageshow', (e) => e.persisted && pageview()) // back from the bfcache: a new view
    }
    on(win, 'scroll', onScroll)
    on(doc, 'visibilitychange', () => visible() ? resume() : hide())
    on(win, 'pagehide', hide)
    on(win, 'blur', pause)
    on(win, 'focus', resume)
    on(doc, 'click', click)
    on(doc, 'auxclick', click)
    on(doc, 'submit', (e) => {
      // Attributes, not properties: an input named "action" or "id" shadows those.
      const formAttr = (name) => e.target.getAttribute(name) || ''
      queueEvent('form_submit', { name: 'Form: Submit', props: {
        form_id: formAttr('id'), form_name: formAttr('name'), action: clean(formAttr('action'))
      } })
    })
    if (isTrue('errors')) {
      on(win, 'error', (e) => error(e.message, e.filename, e.lineno, e.colno))
      on(win, 'unhandledrejection', (e) => error('' + e.reason))
    }

    // Web Vitals, the web-vitals way but minimal: LCP, CLS and INP are final when
    // the page is first hidden; FCP and TTFB are known early and ride the first batch.
    if (visible()) {
      observe('paint', (e) => e.name == 'first-contentful-paint' && vital('FCP', e.startTime))
      observe('largest-contentful-paint', (e) => { lcp = e.startTime })
    }
    observe('layout-shift', (e) => {
      if (!e.hadRecentInput) {
        const t = e.startTime
        t - shiftLast < 1e3 && t - shiftStart < 5e3 ? shiftSum += e.value : (shiftSum = e.value, shiftStart = t)
        shiftLast = t; cls = math.max(cls, shiftSum)
      }
    })
    observe('event', (e) => { e.interactionId && (inp = math.max(inp || 0, e.duration)) }, { durationThreshold: 16 })

    doc.prerendering ? on(doc, 'prerenderingchange', start) : start()
    vital('TTFB', performance.getEntriesByType('navigation')[0]?.responseStart)
  })()
})()
