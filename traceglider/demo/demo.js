// The demo's own script (no inline script anywhere, so the pages run under a strict CSP).
// It only uses the tracker's public API, guarded as any site should: the tracker loads
// with defer and may be blocked, so `window.traceglider` can be missing.
(() => {
  const tg = (method, ...args) => window.traceglider && window.traceglider[method](...args)
  const $ = (id) => document.getElementById(id)
  let cheers = 0

  $('cheer')?.addEventListener('click', () => {
    cheers += 1
    tg('track', 'Cheer', { count: cheers })
    $('cheers').textContent = `${cheers} cheer${cheers > 1 ? 's' : ''} sent`
  })
  $('consent')?.addEventListener('click', () => tg('consent', 'granted'))
  $('deny')?.addEventListener('click', () => tg('consent', 'denied'))

  // A tiny router for app.html: pushState, and render on popstate.
  const views = { overview: 'Pick a tab.', settings: 'Nothing to set here.', billing: 'Free, forever.' }
  const view = $('view')
  if (!view) return
  const render = () => {
    const route = location.pathname.endsWith('/settings') ? 'settings'
      : location.pathname.endsWith('/billing') ? 'billing' : 'overview'
    view.innerHTML = `<h2>${route[0].toUpperCase() + route.slice(1)}</h2><p>${views[route]}</p>`
    document.title = `${route} · TraceGlider demo`
    for (const a of document.querySelectorAll('[data-route]')) {
      a.toggleAttribute('aria-current', a.dataset.route === route)
    }
  }
  document.querySelector('.tabs').addEventListener('click', (e) => {
    const a = e.target.closest('[data-route]')
    if (!a) return
    e.preventDefault()
    history.pushState({}, '', a.href)
    render()
  })
  addEventListener('popstate', render)
  render()
})()
