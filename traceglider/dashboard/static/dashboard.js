// The TraceGlider dashboard. Every value that came from an event is written with
// textContent or setAttribute, never as HTML.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var state = { site: "", period: "30d", date: "", filters: [], metric: "visitors", role: "viewer" };
  var LABELS = { visitors: "Unique visitors", visits: "Total visits", pageviews: "Total pageviews",
    views_per_visit: "Views per visit", bounce_rate: "Bounce rate", visit_duration: "Visit duration" };
  var PANELS = {
    pages: { title: "Top pages", tabs: [["event:page", "Pages"], ["visit:entry_page", "Entry"], ["visit:exit_page", "Exit"]] },
    sources: { title: "Sources", tabs: [["visit:source", "Sources"], ["visit:channel", "Channels"], ["visit:utm_source", "UTM source"], ["visit:utm_medium", "UTM medium"], ["visit:utm_campaign", "UTM campaign"]] },
    countries: { title: "Countries", tabs: [["visit:country", "Countries"]] },
    devices: { title: "Devices", tabs: [["visit:device", "Devices"], ["visit:browser", "Browsers"], ["visit:os", "OS"]] },
    events: { title: "Custom events", tabs: [["event:name", "Events"]] }
  };
  // The custom events panel: no pageviews, and not the measurements (engagement, vitals).
  var EVENTS_ONLY = "event:goal!=Visit **;event:name!=engagement|vital";
  var tabs = {};

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined && text !== null) { n.textContent = String(text); }
    return n;
  }
  function clear(n) { while (n.firstChild) { n.removeChild(n.firstChild); } }
  function fmt(metric, v) {
    if (v === null || v === undefined) { return "–"; }
    if (metric === "bounce_rate" || metric === "conversion_rate") { return v + "%"; }
    if (metric === "visit_duration" || metric === "time_on_page") {
      var m = Math.floor(v / 60), s = Math.round(v % 60);
      return m ? m + "m " + s + "s" : s + "s";
    }
    if (typeof v === "number" && v >= 10000) { return (v / 1000).toFixed(v >= 100000 ? 0 : 1) + "k"; }
    return String(v);
  }
  function filterString(extra) {
    var list = state.filters.concat(extra || []);
    return list.map(function (f) { return f[0] + "==" + f[1].replace(/\|/g, "\\|").replace(/;/g, "\\;"); }).join(";");
  }
  function params(extra) {
    var p = new URLSearchParams();
    p.set("site_id", state.site);
    p.set("period", state.period);
    if (state.date) { p.set("date", state.date); }
    var f = filterString();
    if (f) { p.set("filters", f); }
    Object.keys(extra || {}).forEach(function (k) { p.set(k, extra[k]); });
    return p.toString();
  }
  function get(kind, extra, retried) {
    return fetch("/dashboard/api/" + kind + "?" + params(extra), { credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); }
        // A 503 that says when to come back (files replaced by a compaction while
        // they were read, memory short for a moment): once, after that wait.
        var wait = Number(r.headers.get("Retry-After"));
        if (r.status === 503 && !retried && wait > 0 && wait <= 30) {
          return new Promise(function (done) { setTimeout(done, wait * 1000); })
            .then(function () { return get(kind, extra, true); });
        }
        noteAge(Number(r.headers.get("Age") || 0));
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body && body.error ? body.error : "HTTP " + r.status); }
          return body;
        });
      });
  }
  // Panels may come from the server's last computation (see dashboard/answers.py):
  // say how old the oldest one on the page is.
  function noteAge(seconds) {
    state.age = Math.max(state.age || 0, seconds || 0);
    var a = state.age;
    $("age").textContent = a >= 5 ? "updated " + (a < 90 ? a + " s" : Math.round(a / 60) + " min") + " ago" : "";
  }
  function showError(e) { var b = $("error"); b.hidden = false; b.textContent = String(e && e.message ? e.message : e); }

  function saveHash() {
    var p = new URLSearchParams();
    p.set("site", state.site); p.set("period", state.period);
    if (state.date) { p.set("date", state.date); }
    state.filters.forEach(function (f) { p.append("f", f[0] + "==" + f[1]); });
    history.replaceState(null, "", "#" + p.toString());
  }
  function loadHash() {
    var p = new URLSearchParams(window.location.hash.slice(1));
    if (p.get("site")) { state.site = p.get("site"); }
    if (p.get("period")) { state.period = p.get("period"); }
    state.date = p.get("date") || "";
    state.filters = p.getAll("f").map(function (s) { var i = s.indexOf("=="); return [s.slice(0, i), s.slice(i + 2)]; })
      .filter(function (f) { return f[0] && /^(event|visit):[a-z_]+(:[\w .-]+)?$/.test(f[0]); });
  }

  function addFilter(prop, value) {
    state.filters = state.filters.filter(function (f) { return f[0] !== prop; });
    state.filters.push([prop, value]);
    refresh();
  }
  function renderFilters() {
    var box = $("filters"); clear(box);
    state.filters.forEach(function (f, i) {
      var chip = el("span", "chip");
      chip.appendChild(el("span", "chip-prop", f[0].split(":").pop().replace("_", " ")));
      chip.appendChild(el("span", "chip-val", f[1]));
      var x = el("button", "chip-x", "×");
      x.type = "button"; x.setAttribute("aria-label", "Remove filter");
      x.addEventListener("click", function () { state.filters.splice(i, 1); refresh(); });
      chip.appendChild(x);
      box.appendChild(chip);
    });
  }

  function renderHeadline(data) {
    var box = $("headline"); clear(box);
    Object.keys(LABELS).forEach(function (m) {
      var r = data.results[m]; if (!r) { return; }
      var card = el("div", "stat");
      card.appendChild(el("div", "stat-label", LABELS[m]));
      card.appendChild(el("div", "stat-value", fmt(m, r.value)));
      if (r.change !== null && r.change !== undefined) {
        var good = m === "bounce_rate" ? r.change <= 0 : r.change >= 0;
        var c = el("div", "stat-change " + (good ? "up" : "down"), (r.change > 0 ? "↑ " : r.change < 0 ? "↓ " : "") + Math.abs(r.change) + (m === "bounce_rate" ? " pts" : "%"));
        card.appendChild(c);
      }
      box.appendChild(card);
    });
  }

  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var n = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    return n;
  }
  function renderChart(data) {
    var box = $("chart"); clear(box);
    var rows = data.results, metric = state.metric;
    var W = 1000, H = 260, L = 48, B = 28, T = 10;
    var max = Math.max.apply(null, rows.map(function (r) { return r[metric] || 0; }).concat([1]));
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": metric + " over time", preserveAspectRatio: "none" });
    for (var g = 0; g <= 4; g++) {
      var y = T + (H - T - B) * (1 - g / 4);
      s.appendChild(svg("line", { x1: L, x2: W, y1: y, y2: y, "class": "grid-line" }));
      var lab = svg("text", { x: L - 6, y: y + 4, "class": "axis", "text-anchor": "end" });
      lab.textContent = fmt(metric, Math.round(max * g / 4)); s.appendChild(lab);
    }
    var n = rows.length, step = n > 1 ? (W - L - 8) / (n - 1) : 0;
    var pts = rows.map(function (r, i) { return [L + i * step, T + (H - T - B) * (1 - (r[metric] || 0) / max)]; });
    if (pts.length) {
      var d = pts.map(function (p, i) { return (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1); }).join(" ");
      s.appendChild(svg("path", { d: d + " L" + pts[n - 1][0].toFixed(1) + " " + (H - B) + " L" + L + " " + (H - B) + " Z", "class": "area" }));
      s.appendChild(svg("path", { d: d, "class": "line" }));
      var every = Math.max(1, Math.ceil(n / 8));
      rows.forEach(function (r, i) {
        var c = svg("circle", { cx: pts[i][0], cy: pts[i][1], r: 3, "class": "dot" });
        var t = svg("title"); t.textContent = r.date + ": " + fmt(metric, r[metric]); c.appendChild(t);
        s.appendChild(c);
        if (i % every === 0) {
          var x = svg("text", { x: pts[i][0], y: H - 8, "class": "axis", "text-anchor": "middle" });
          x.textContent = String(r.date).slice(5, 16); s.appendChild(x);
        }
      });
    }
    box.appendChild(s);
  }

  function table(card, rows, key, metrics, onClick) {
    var list = el("div", "rows");
    var max = Math.max.apply(null, rows.map(function (r) { return r[metrics[0]] || 0; }).concat([1]));
    if (!rows.length) { list.appendChild(el("div", "empty", "No data yet")); }
    rows.forEach(function (r) {
      var row = el(onClick ? "button" : "div", "row");
      if (onClick) { row.type = "button"; row.addEventListener("click", function () { onClick(r); }); }
      var bar = el("span", "bar"); bar.style.width = (100 * (r[metrics[0]] || 0) / max).toFixed(1) + "%";
      row.appendChild(bar);
      row.appendChild(el("span", "label", r[key]));
      metrics.forEach(function (m) { row.appendChild(el("span", "num", fmt(m, r[m]))); });
      list.appendChild(row);
    });
    card.appendChild(list);
  }
  function head(card, title, metrics) {
    var h = el("div", "card-head"); h.appendChild(el("h2", "", title));
    var cols = el("div", "cols");
    metrics.forEach(function (m) { cols.appendChild(el("span", "", m.replace(/_/g, " "))); });
    h.appendChild(cols); card.appendChild(h);
  }
  function tabbar(card, name, spec) {
    if (spec.tabs.length < 2) { return; }
    var bar = el("div", "tabs");
    spec.tabs.forEach(function (t) {
      var b = el("button", t[0] === tabs[name] ? "tab on" : "tab", t[1]); b.type = "button";
      b.addEventListener("click", function () { tabs[name] = t[0]; panel(name); });
      bar.appendChild(b);
    });
    card.appendChild(bar);
  }
  function keyOf(prop) {
    if (prop.indexOf("event:props:") === 0) { return prop.slice(12); }
    var k = prop.split(":")[1]; return k === "device" ? "device" : k;
  }
  function panel(name) {
    var card = document.querySelector('[data-panel="' + name + '"]');
    if (!card) { return Promise.resolve(); }
    if (name === "goals") { return goals(card); }
    if (name === "funnel") { return funnel(card); }
    if (name === "navigation") { return navigation(card); }
    var spec = PANELS[name]; var prop = tabs[name] || spec.tabs[0][0]; tabs[name] = prop;
    var metrics = name === "pages" && prop === "event:page" ? ["visitors", "pageviews", "scroll_depth"] : ["visitors"];
    var extra = { property: prop, limit: "10", metrics: metrics.join(",") };
    if (name === "events") { extra.filters = [filterString(), EVENTS_ONLY].filter(Boolean).join(";"); metrics = ["visitors", "events"]; extra.metrics = "visitors,events"; }
    return get("breakdown", extra).then(function (data) {
      clear(card); head(card, spec.title, metrics); tabbar(card, name, spec);
      table(card, data.results, keyOf(prop), metrics, function (r) {
        if (name === "events") { return eventProps(card, r.name); }
        addFilter(prop, String(r[keyOf(prop)]));
      });
    });
  }
  function eventProps(card, name) {
    return get("props", { name: name }).then(function (keys) {
      var box = el("div", "props");
      box.appendChild(el("h3", "", "Properties of " + name));
      var jobs = keys.results.map(function (k) {
        return get("breakdown", { property: "event:props:" + k, filters: filterString([["event:name", name]]), limit: "10" })
          .then(function (data) { box.appendChild(el("h4", "", k)); table(box, data.results, k, ["visitors"], null); });
      });
      var old = card.querySelector(".props"); if (old) { card.removeChild(old); }
      card.appendChild(box);
      return Promise.all(jobs);
    });
  }
  function goals(card) {
    return get("goals", { metrics: "visitors,events,conversion_rate" }).then(function (data) {
      clear(card); head(card, "Goal conversions", ["visitors", "events", "conversion_rate"]);
      table(card, data.results, "goal", ["visitors", "events", "conversion_rate"], function (r) { addFilter("event:goal", r.goal); });
    });
  }
  function funnel(card) {
    return get("config").then(function (cfg) {
      clear(card);
      var f = (cfg.funnels || [])[0];
      if (!f) { head(card, "Funnel", []); card.appendChild(el("div", "empty", "No funnel configured")); return; }
      return get("funnel", { steps: f.steps.join(",") }).then(function (data) {
        head(card, "Funnel · " + f.name, ["visitors", "conversion_rate"]);
        table(card, data.steps.map(function (s) { return { goal: s.step + ". " + s.goal, visitors: s.visitors, conversion_rate: s.conversion_rate }; }),
          "goal", ["visitors", "conversion_rate"], null);
      });
    });
  }
  function navigation(card) {
    var page = null;
    state.filters.forEach(function (f) { if (f[0] === "event:page" && f[1].indexOf("*") < 0) { page = f[1]; } });
    clear(card); head(card, "Navigation", []);
    if (!page) { card.appendChild(el("div", "empty", "Click a page to see where its visitors came from and went next")); return Promise.resolve(); }
    var q = {}; q.path = page; q.filters = filterString().split(";").filter(function (s) { return s.indexOf("event:page==") !== 0; }).join(";");
    return get("navigation", q).then(function (data) {
      clear(card); head(card, "Navigation · " + page, ["pageviews"]);
      card.appendChild(el("h3", "", "Came from"));
      table(card, data.previous, "page", ["pageviews"], null);
      card.appendChild(el("h3", "", "Went next"));
      table(card, data.next, "page", ["pageviews"], null);
    });
  }

  function refresh() {
    $("error").hidden = true;
    state.age = 0; $("age").textContent = "";
    saveHash(); renderFilters();
    var jobs = [
      get("aggregate", { metrics: Object.keys(LABELS).join(","), compare: "previous_period" }).then(renderHeadline),
      chart()
    ].concat(Object.keys(PANELS).concat(["goals", "funnel", "navigation"]).map(panel));
    return Promise.all(jobs).catch(showError);
  }
  function chart() {
    return get("timeseries", { metrics: state.metric }).then(renderChart);
  }
  function realtime() {
    if (!state.site) { return; }
    fetch("/dashboard/api/realtime?site_id=" + encodeURIComponent(state.site), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (n) { if (n !== null) { $("realtime").textContent = "● " + n + " current visitor" + (n === 1 ? "" : "s"); } })
      .catch(function () { /* the next tick tries again */ });
  }
  function share() {
    fetch("/dashboard/api/shares?site_id=" + encodeURIComponent(state.site), { method: "POST", credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        var box = $("sharebox"); clear(box); box.hidden = false;
        box.appendChild(el("h2", "", "Read-only link for " + s.site));
        var input = el("input"); input.readOnly = true; input.value = window.location.origin + s.url; box.appendChild(input);
        var revoke = el("button", "", "Revoke"); revoke.type = "button";
        revoke.addEventListener("click", function () {
          fetch("/dashboard/api/shares/" + encodeURIComponent(s.id), { method: "DELETE", credentials: "same-origin" })
            .then(function () { box.hidden = true; });
        });
        box.appendChild(revoke);
      }).catch(showError);
  }
  function theme(toggle) {
    var saved = localStorage.getItem("tg-theme");
    if (toggle) { saved = document.documentElement.dataset.theme === "dark" ? "light" : "dark"; localStorage.setItem("tg-theme", saved); }
    if (saved) { document.documentElement.dataset.theme = saved; }
  }

  function start() {
    theme(false);
    loadHash();
    fetch("/dashboard/api/me", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (me) {
      state.role = me.role;
      var sel = $("site"); clear(sel);
      (me.sites || []).forEach(function (s) { var o = el("option", "", s); o.value = s; sel.appendChild(o); });
      if (!state.site || (me.sites || []).indexOf(state.site) < 0) { state.site = (me.sites || [""])[0] || ""; }
      sel.value = state.site;
      $("share").hidden = me.role !== "owner";
      $("period").value = state.period;
      if (state.period === "custom") { $("custom").hidden = false; var d = state.date.split(","); $("from").value = d[0] || ""; $("to").value = d[1] || ""; }
      refresh(); realtime();
      setInterval(realtime, 30000);
    }).catch(showError);
    $("site").addEventListener("change", function (e) { state.site = e.target.value; state.filters = []; refresh(); realtime(); });
    $("period").addEventListener("change", function (e) {
      state.period = e.target.value;
      $("custom").hidden = state.period !== "custom";
      if (state.period !== "custom") { state.date = ""; refresh(); }
    });
    $("apply").addEventListener("click", function () {
      if ($("from").value && $("to").value) { state.date = $("from").value + "," + $("to").value; refresh(); }
    });
    $("metric").addEventListener("change", function (e) { state.metric = e.target.value; chart().catch(showError); });
    $("theme").addEventListener("click", function () { theme(true); });
    $("share").addEventListener("click", share);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
