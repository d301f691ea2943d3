// The TraceGlider dashboard. Every value that came from an event is written with
// textContent or setAttribute, never as HTML. Everything a person changes (range,
// interval, filters, tabs, the details view) is kept in the URL's fragment, so a link
// opens the same view.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var state = { site: "", period: "30d", date: "", filters: [], metric: "visitors", interval: "",
    compare: true, tabs: {}, details: "", role: "viewer", gen: 0, config: { goals: [], funnels: [] } };
  var LABELS = { visitors: "Unique visitors", visits: "Total visits", pageviews: "Total pageviews",
    views_per_visit: "Views per visit", bounce_rate: "Bounce rate", visit_duration: "Visit duration" };
  // Column headings: short, so that three fit a phone's card.
  var COLS = { visitors: "Visitors", visits: "Visits", pageviews: "Views", events: "Events", scroll_depth: "Scroll",
    conversion_rate: "CR", time_on_page: "Time", p75: "p75", good: "Good", ni: "Needs impr.", poor: "Poor",
    samples: "Samples", count: "Count", pages: "Pages", last_seen: "Seen", dropoff: "Drop-off" };
  var PANELS = {
    pages: { title: "Top pages", tabs: [["event:page", "Pages"], ["visit:entry_page", "Entry"], ["visit:exit_page", "Exit"]] },
    sources: { title: "Sources", tabs: [["visit:source", "Sources"], ["visit:channel", "Channels"], ["visit:utm_source", "UTM source"], ["visit:utm_medium", "UTM medium"], ["visit:utm_campaign", "UTM campaign"]] },
    countries: { title: "Locations", tabs: [["visit:country", "Countries"], ["visit:region", "Regions"], ["visit:city_name", "Cities"]] },
    devices: { title: "Devices", tabs: [["visit:device", "Devices"], ["visit:browser", "Browsers"], ["visit:os", "OS"]] },
    events: { title: "Custom events", tabs: [["event:name", "Events"]] }
  };
  // The custom events panel: no pageviews, and not the measurements (engagement, vitals, errors).
  var EVENTS_ONLY = "event:goal!=Visit **;event:name!=engagement|vital|JS Error";
  var HEADLINE = Object.keys(LABELS);
  var INTERVALS = { day: ["hour"], "7d": ["hour", "day"], "30d": ["day", "week"], month: ["day", "week"],
    "6mo": ["day", "week", "month"], "12mo": ["day", "week", "month"], custom: ["day", "week", "month"] };
  var DEFAULT_INTERVAL = { day: "hour", "7d": "day", "30d": "day", month: "day", "6mo": "month", "12mo": "month", custom: "day" };
  var GEO = { "visit:region": "No regions in this period: they come from a City database (TG_GEOIP_DB).",
    "visit:city_name": "No cities in this period: they come from a City database (TG_GEOIP_DB)." };
  var shown = {};  // panel name -> what its card shows, for the details view

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined && text !== null) { n.textContent = String(text); }
    return n;
  }
  function clear(n) { while (n.firstChild) { n.removeChild(n.firstChild); } }
  function button(cls, text, onClick) {
    var b = el("button", cls, text); b.type = "button"; b.addEventListener("click", onClick); return b;
  }

  // -- numbers ---------------------------------------------------------------------
  // One rule for every count on the page: 999, 9.3k, 11.2k, 150k, 1.2M.
  function short(v) {
    var a = Math.abs(v), unit = "", x = v;
    if (a >= 999950) { x = v / 1e6; unit = "M"; } else if (a >= 1000) { x = v / 1e3; unit = "k"; } else { return String(Math.round(v * 100) / 100); }
    return (Math.abs(x) >= 100 ? String(Math.round(x)) : String(Math.round(x * 10) / 10)) + unit;
  }
  function duration(v) {
    var h = Math.floor(v / 3600), m = Math.floor((v % 3600) / 60), s = Math.round(v % 60);
    if (s === 60) { m += 1; s = 0; }
    return h ? h + "h " + m + "m" : m ? m + "m " + s + "s" : s + "s";
  }
  function fmt(metric, v) {
    if (v === null || v === undefined || v === "") { return "–"; }
    if (metric === "bounce_rate" || metric === "conversion_rate" || metric === "scroll_depth" ||
        metric === "good" || metric === "ni" || metric === "poor") { return Math.round(v * 10) / 10 + "%"; }
    if (metric === "visit_duration" || metric === "time_on_page") { return duration(v); }
    if (metric === "last_seen") { return ago(v); }
    if (typeof v === "number") { return short(v); }
    return String(v);
  }
  // "5 min ago" of a server time (UTC, no zone)
  function ago(v) {
    var t = Date.parse(String(v) + "Z"), s = (Date.now() - t) / 1000;
    if (!isFinite(s)) { return String(v); }
    if (s < 90) { return "just now"; }
    if (s < 5400) { return Math.round(s / 60) + " min ago"; }
    if (s < 129600) { return Math.round(s / 3600) + " h ago"; }
    return Math.round(s / 86400) + " d ago";
  }
  function exact(metric, v) { return typeof v === "number" && fmt(metric, v) !== String(v) ? v.toLocaleString("en-US") : ""; }

  // -- names -------------------------------------------------------------------------
  var regionNames = null;
  try { regionNames = new Intl.DisplayNames(["en"], { type: "region" }); } catch (e) { regionNames = null; }
  function flag(code) {
    if (!/^[A-Z]{2}$/.test(code)) { return ""; }
    return String.fromCodePoint(0x1F1E6 + code.charCodeAt(0) - 65, 0x1F1E6 + code.charCodeAt(1) - 65);
  }
  // A flag emoji only where the fonts draw one (not Windows, nor a box without an emoji
  // font): two regional indicators make one glyph, narrower than the two apart.
  var flagsDrawn = (function () {
    try {
      var c = document.createElement("canvas").getContext("2d");
      c.font = "16px sans-serif";
      return c.measureText(flag("DE")).width < 1.5 * c.measureText(flag("DE").slice(0, 2)).width;
    } catch (e) { return false; }
  })();
  function countryName(code) {
    var c = String(code || "").toUpperCase(), name = "";
    if (!/^[A-Z]{2}$/.test(c)) { return String(code); }
    try { name = regionNames ? regionNames.of(c) : ""; } catch (e) { name = ""; }
    return name && name !== c ? name : c;
  }
  function capital(s) { s = String(s); return s ? s.charAt(0).toUpperCase() + s.slice(1) : s; }
  // How a property's value is shown (the filter and the CSV keep the value itself).
  function display(prop, v) {
    if (v === null || v === undefined) { return "(none)"; }
    if (prop === "visit:country") { var f = flagsDrawn ? flag(String(v)) : ""; return (f ? f + " " : "") + countryName(v); }
    if (prop === "visit:device") { return capital(v); }
    return String(v);
  }

  // -- requests ----------------------------------------------------------------------
  function esc(v) { return String(v).replace(/\|/g, "\\|").replace(/;/g, "\\;"); }
  function filterString(extra) {
    return state.filters.concat(extra || []).map(function (f) { return f[0] + (f[2] || "==") + esc(f[1]); }).join(";");
  }
  function withFilters() { return [filterString()].concat([].slice.call(arguments)).filter(Boolean).join(";"); }
  function params(extra) {
    var p = new URLSearchParams();
    p.set("site_id", state.site);
    p.set("period", state.period);
    if (state.date) { p.set("date", state.date); }
    var f = filterString();
    if (f) { p.set("filters", f); }
    Object.keys(extra || {}).forEach(function (k) { if (extra[k] === "") { p.delete(k); } else { p.set(k, extra[k]); } });
    return p.toString();
  }
  function Stale() { this.message = "stale"; }
  // A request of this view: its answer is dropped if the view changed meanwhile (another
  // site, range or filter), so one site's figures never show under another's name.
  function get(kind, extra, retried, gen) {
    gen = gen === undefined ? state.gen : gen;
    return fetch("/dashboard/api/" + kind + "?" + params(extra), { credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); }
        // A 503 that says when to come back (files replaced by a compaction while
        // they were read, memory short for a moment): once, after that wait.
        var wait = Number(r.headers.get("Retry-After"));
        if (r.status === 503 && !retried && wait > 0 && wait <= 30) {
          return new Promise(function (done) { setTimeout(done, wait * 1000); })
            .then(function () { return get(kind, extra, true, gen); });
        }
        return r.json().then(function (body) {
          if (gen !== state.gen) { throw new Stale(); }
          if (!r.ok) { throw new Error(body && body.error ? body.error : "HTTP " + r.status); }
          noteAge(Number(r.headers.get("Age") || 0));
          return body;
        });
      });
  }
  function send(method, path, body) {
    return fetch(path, { method: method, credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        return r.json().then(function (b) { if (!r.ok) { throw new Error(b && b.error ? b.error : "HTTP " + r.status); } return b; });
      });
  }
  // Panels may come from the server's last computation (see dashboard/answers.py):
  // say how old the oldest one on the page is.
  function noteAge(seconds) {
    state.age = Math.max(state.age || 0, seconds || 0);
    var a = state.age;
    $("age").textContent = a >= 5 ? "updated " + (a < 90 ? a + " s" : Math.round(a / 60) + " min") + " ago" : "";
  }
  function showError(e) {
    if (e instanceof Stale) { return; }
    var b = $("error"); b.hidden = false; b.textContent = String(e && e.message ? e.message : e);
  }

  // -- dates (UTC, as the server counts them) -------------------------------------------
  function iso(d) { return d.toISOString().slice(0, 10); }
  function addDays(d, n) { var x = new Date(d.getTime()); x.setUTCDate(x.getUTCDate() + n); return x; }
  function monthStart(d, back) { return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 1)); }
  function today() { var n = new Date(); return new Date(Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate())); }
  // [first, last] days of the current range, the same as the server's `period_range`.
  function range() {
    var ref = state.date && state.period !== "custom" ? new Date(state.date + "T00:00:00Z") : today();
    if (state.period === "custom") { var p = state.date.split(","); return [new Date(p[0] + "T00:00:00Z"), new Date(p[1] + "T00:00:00Z")]; }
    if (state.period === "day") { return [ref, ref]; }
    if (state.period === "7d") { return [addDays(ref, -6), ref]; }
    if (state.period === "30d") { return [addDays(ref, -29), ref]; }
    if (state.period === "month") { return [monthStart(ref, 0), addDays(monthStart(ref, -1), -1)]; }
    if (state.period === "6mo" || state.period === "12mo") {
      return [monthStart(ref, state.period === "6mo" ? 5 : 11), addDays(monthStart(ref, -1), -1)];
    }
    return [ref, ref];
  }
  // The range of the same length just before (the server's `Query.previous`).
  function previousRange() {
    var r = range(), days = Math.round((r[1] - r[0]) / 86400000) + 1;
    return [addDays(r[0], -days), addDays(r[0], -1)];
  }
  function previousParams(extra) {
    var r = previousRange(), out = { period: "custom", date: iso(r[0]) + "," + iso(r[1]) };
    Object.keys(extra || {}).forEach(function (k) { out[k] = extra[k]; });
    return out;
  }
  function intervals() {
    if (state.period !== "custom") { return INTERVALS[state.period] || ["day"]; }
    var r = range(), days = Math.round((r[1] - r[0]) / 86400000) + 1;
    return days <= 2 ? ["hour", "day"] : days <= 40 ? ["day", "week"] : ["day", "week", "month"];
  }
  function interval() {
    var allowed = intervals();
    if (allowed.indexOf(state.interval) >= 0) { return state.interval; }
    var d = DEFAULT_INTERVAL[state.period] || "day";
    return allowed.indexOf(d) >= 0 ? d : allowed[0];
  }

  // -- the URL ---------------------------------------------------------------------------
  var TAB_KEYS = Object.keys(PANELS).concat(["funnel", "environment", "vitals", "errors", "errors.message"]);
  function saveHash() {
    var p = new URLSearchParams();
    p.set("site", state.site); p.set("period", state.period);
    if (state.date) { p.set("date", state.date); }
    state.filters.forEach(function (f) { p.append("f", f[0] + (f[2] || "==") + f[1]); });
    if (state.metric !== "visitors") { p.set("metric", state.metric); }
    if (state.interval) { p.set("interval", state.interval); }
    if (!state.compare) { p.set("compare", "off"); }
    TAB_KEYS.forEach(function (k) { if (state.tabs[k]) { p.set("tab." + k, state.tabs[k]); } });
    if (state.details) { p.set("details", state.details); }
    history.replaceState(null, "", "#" + p.toString());
  }
  var FILTER = /^((?:event|visit):[a-z_]+(?::[\w .-]+)?)(==|!=|~|!~)([\s\S]*)$/;
  function loadHash() {
    var p = new URLSearchParams(window.location.hash.slice(1));
    if (p.get("site")) { state.site = p.get("site"); }
    var period = p.get("period");
    state.period = period && (period in INTERVALS || period === "realtime") ? period : "30d";
    state.date = p.get("date") || "";
    if (state.period === "custom" && !/^\d{4}-\d\d-\d\d,\d{4}-\d\d-\d\d$/.test(state.date)) { state.period = "30d"; state.date = ""; }
    if (state.period !== "custom" && state.date && !/^\d{4}-\d\d-\d\d$/.test(state.date)) { state.date = ""; }
    state.filters = p.getAll("f").map(function (s) { var m = FILTER.exec(s); return m ? [m[1], m[3], m[2] === "==" ? undefined : m[2]] : null; })
      .filter(Boolean).map(function (f) { return f[2] ? f : [f[0], f[1]]; });
    state.metric = p.get("metric") in LABELS ? p.get("metric") : "visitors";
    state.interval = /^(hour|day|week|month)$/.test(p.get("interval") || "") ? p.get("interval") : "";
    state.compare = p.get("compare") !== "off";
    state.tabs = {};
    TAB_KEYS.forEach(function (k) { var t = p.get("tab." + k); if (t) { state.tabs[k] = t; } });
    state.details = p.get("details") || "";
  }

  function addFilter(prop, value) {
    state.filters = state.filters.filter(function (f) { return f[0] !== prop; });
    state.filters.push([prop, String(value)]);
    state.details = "";
    refresh();
  }
  function propName(prop) {
    var last = prop.split(":").pop();
    return { device: "device", entry_page: "entry page", exit_page: "exit page", goal: "goal", country: "country",
      screen: "screen", language: "language", timezone: "time zone" }[last] || last.replace(/_/g, " ");
  }
  function renderFilters() {
    var box = $("filters"); clear(box);
    state.filters.forEach(function (f, i) {
      var chip = el("span", "chip");
      chip.appendChild(el("span", "chip-prop", propName(f[0]) + (f[2] && f[2] !== "==" ? " " + f[2] : "")));
      var v = el("span", "chip-val", display(f[0], f[1])); v.title = f[1]; chip.appendChild(v);
      var x = button("chip-x", "×", function () { state.filters.splice(i, 1); refresh(); });
      x.setAttribute("aria-label", "Remove filter");
      chip.appendChild(x);
      box.appendChild(chip);
    });
  }

  // -- headline ----------------------------------------------------------------------
  function placeholders() {
    var box = $("headline"); clear(box);
    (state.period === "realtime" ? ["current", "visitors", "pageviews"] : HEADLINE).forEach(function (m) {
      var card = el("div", "stat loading");
      card.appendChild(el("div", "stat-label", m === "current" ? "Current visitors" : LABELS[m]));
      card.appendChild(el("div", "stat-value", "…"));
      card.appendChild(el("div", "stat-change", " "));
      box.appendChild(card);
    });
  }
  function change(m, now, before) {
    if (before === null || before === undefined) { return null; }
    if (m === "bounce_rate") { return Math.round(now - before); }
    if (!before) { return null; }
    return Math.round(100 * (now - before) / before);
  }
  function renderHeadline(cur, prev) {
    var box = $("headline"); clear(box);
    var hadVisitors = prev && prev.results.visitors && prev.results.visitors.value > 0;
    HEADLINE.forEach(function (m) {
      var r = cur.results[m]; if (!r) { return; }
      var card = el("div", "stat");
      card.appendChild(el("div", "stat-label", LABELS[m]));
      var value = el("div", "stat-value", fmt(m, r.value)); value.title = exact(m, r.value); card.appendChild(value);
      // no change against a period without data: "+100%" would say nothing
      var c = hadVisitors ? change(m, r.value, prev.results[m] && prev.results[m].value) : null;
      if (c !== null) {
        var good = m === "bounce_rate" ? c <= 0 : c >= 0;
        var t = el("div", "stat-change " + (c === 0 ? "flat" : good ? "up" : "down"),
          (c > 0 ? "↑ " : c < 0 ? "↓ " : "") + Math.abs(c) + (m === "bounce_rate" ? " pts" : "%"));
        t.title = "against " + fmt(m, prev.results[m].value) + " in the previous period";
        card.appendChild(t);
      } else {
        var n = el("div", "stat-change flat", state.compare && prev ? "no earlier data" : " ");
        card.appendChild(n);
      }
      box.appendChild(card);
    });
  }
  function headline() {
    var q = { metrics: HEADLINE.join(",") };
    var jobs = [get("aggregate", q)];
    if (state.compare) { jobs.push(get("aggregate", previousParams(q))); }
    return Promise.all(jobs).then(function (a) { renderHeadline(a[0], a[1] || null); });
  }

  // -- the chart -----------------------------------------------------------------------
  var SVG = "http://www.w3.org/2000/svg";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function svg(tag, attrs) {
    var n = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    return n;
  }
  // Round ticks: 0 and multiples of 1, 2, 2.5 or 5 times a power of ten (of 15 s,
  // 30 s, minutes and hours for durations) reaching the largest value.
  function ticks(max, metric) {
    var steps;
    if (metric === "visit_duration") { steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]; }
    if (metric === "bounce_rate" && max > 50) { return [0, 25, 50, 75, 100]; }
    var raw = Math.max(max, 1) / 4, step;
    if (steps) { step = steps.filter(function (s) { return s >= raw; })[0] || 3600 * Math.ceil(raw / 3600); } else {
      var p = Math.pow(10, Math.floor(Math.log10(raw)));
      step = [1, 2, 2.5, 5, 10].map(function (m) { return m * p; }).filter(function (s) { return s >= raw; })[0];
      if (step < 1) { step = 1; }
    }
    var out = [];
    for (var v = 0; v < max + step * 0.999 || out.length < 2; v += step) { out.push(Math.round(v * 1000) / 1000); if (v >= max) { break; } }
    return out;
  }
  function bucketLabel(date, unit, long) {
    var s = String(date), d = new Date(s.slice(0, 10) + "T00:00:00Z");
    if (unit === "minute") { return s.slice(11, 16); }
    if (unit === "hour") { return (long ? MONTHS[d.getUTCMonth()] + " " + d.getUTCDate() + ", " : "") + s.slice(11, 16); }
    if (unit === "month") { return MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear(); }
    return (unit === "week" && long ? "Week of " : "") + MONTHS[d.getUTCMonth()] + " " + d.getUTCDate();
  }
  var lastChart = null;
  function renderChart(rows, previous, metric, unit) {
    lastChart = [rows, previous, metric, unit];
    var box = $("chart"); clear(box);
    // The drawing is made at the box's own size: text is never stretched or squashed.
    var W = Math.max(240, box.clientWidth || 600), H = Math.max(160, box.clientHeight || 260);
    var L = W < 500 ? 40 : 52, R = 10, B = 26, T = 10;
    var values = rows.map(function (r) { return r[metric] || 0; });
    var old = (previous || []).map(function (r) { return r[metric] || 0; });
    var marks = ticks(Math.max.apply(null, values.concat(old).concat([0])), metric);
    var top = marks[marks.length - 1] || 1;
    var s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": (LABELS[metric] || metric) + " over time" });
    var y = function (v) { return T + (H - T - B) * (1 - v / top); };
    marks.forEach(function (m) {
      s.appendChild(svg("line", { x1: L, x2: W - R, y1: y(m), y2: y(m), "class": "grid-line" }));
      var lab = svg("text", { x: L - 6, y: y(m) + 4, "class": "axis", "text-anchor": "end" });
      lab.textContent = fmt(metric, m); s.appendChild(lab);
    });
    var n = rows.length, step = n > 1 ? (W - L - R - 6) / (n - 1) : 0;
    var x = function (i) { return L + 3 + i * step; };
    var line = function (vals) { return vals.map(function (v, i) { return (i ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1); }).join(" "); };
    if (!old.some(function (v) { return v > 0; })) { old = []; }
    if (old.length) { s.appendChild(svg("path", { d: line(old.slice(0, n)), "class": "line-prev" })); }
    if (n) {
      var d = line(values);
      s.appendChild(svg("path", { d: d + " L" + x(n - 1).toFixed(1) + " " + (H - B) + " L" + x(0).toFixed(1) + " " + (H - B) + " Z", "class": "area" }));
      s.appendChild(svg("path", { d: d, "class": "line" }));
      var every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor((W - L) / (unit === "month" ? 80 : 64)))));
      rows.forEach(function (r, i) {
        if (n <= 62) { s.appendChild(svg("circle", { cx: x(i), cy: y(values[i]), r: 2.5, "class": "dot" })); }
        // a hover target per bucket: its value, and the previous period's
        var hit = svg("rect", { x: x(i) - Math.max(step, 8) / 2, y: T, width: Math.max(step, 8), height: H - T - B, "class": "hit" });
        var t = svg("title");
        t.textContent = bucketLabel(r.date, unit, true) + ": " + fmt(metric, values[i]) +
          (old.length > i ? " (previous period " + bucketLabel(previous[i].date, unit, true) + ": " + fmt(metric, old[i]) + ")" : "");
        hit.appendChild(t); s.appendChild(hit);
        if (i % every === 0) {
          var lab = svg("text", { x: x(i), y: H - 8, "class": "axis", "text-anchor": i === 0 && n > 1 ? "start" : "middle" });
          lab.textContent = bucketLabel(r.date, unit, false); s.appendChild(lab);
        }
      });
    }
    box.appendChild(s);
    $("legend").hidden = !old.length;
  }
  function chart() {
    var metric = state.metric;
    if (state.period === "realtime") {
      return get("live").then(function (data) { renderChart(data.minutes, null, "visitors", "minute"); });
    }
    var unit = interval(), q = { metrics: metric, interval: unit };
    var jobs = [get("timeseries", q)];
    if (state.compare) { jobs.push(get("timeseries", previousParams(q))); }
    return Promise.all(jobs).then(function (a) { renderChart(a[0].results, a[1] ? a[1].results : null, metric, unit); });
  }
  function chartControls() {
    var sel = $("interval"); clear(sel);
    var live = state.period === "realtime";
    sel.hidden = live; $("compare").parentNode.hidden = live; $("metric").hidden = live;
    intervals().forEach(function (i) { var o = el("option", "", capital(i)); o.value = i; sel.appendChild(o); });
    sel.value = interval();
    $("compare").checked = state.compare;
    $("metric").value = state.metric;
    $("chart-title").textContent = live ? "Visitors in the last 30 minutes" : LABELS[state.metric];
  }

  // -- lists -------------------------------------------------------------------------
  // A list panel: `load(limit, search)` gives rows; `key` is the row's value, `prop` how
  // it is shown and filtered; `metrics` its number columns.
  function table(box, spec, rows, limit) {
    var list = el("div", "rows");
    var first = spec.metrics[0];
    var max = Math.max.apply(null, rows.map(function (r) { return Number(r[spec.bar || first]) || 0; }).concat([1]));
    if (!rows.length) { list.appendChild(emptyState(spec)); }
    rows.slice(0, limit || rows.length).forEach(function (r) {
      var click = spec.onClick ? function () { spec.onClick(r); } : null;
      var row = click ? button("row", null, click) : el("div", "row");
      var bar = el("span", "bar"); bar.style.width = (100 * (Number(r[spec.bar || first]) || 0) / max).toFixed(1) + "%";
      row.appendChild(bar);
      var text = spec.show ? spec.show(r) : display(spec.prop, r[spec.key]);
      var label = el("span", "label", text); label.title = String(r[spec.key]); row.appendChild(label);
      spec.metrics.forEach(function (m) {
        var c = el("span", "num num-" + m, (spec.format || fmt)(m, r[m])); var full = exact(m, r[m]); if (full) { c.title = full; }
        row.appendChild(c);
      });
      list.appendChild(row);
    });
    box.appendChild(list);
  }
  function emptyState(spec) {
    var box = el("div", "empty");
    if (state.filters.length && !spec.noFilterHint) {
      box.textContent = "Nothing matches the filters above in this period. Remove a filter or pick a longer range.";
    } else {
      box.textContent = spec.empty || "No data in this period yet. Pick a longer range, or check that the script is on your pages.";
    }
    return box;
  }
  function head(card, title, spec) {
    var h = el("div", "card-head"); h.appendChild(el("h2", "", title));
    var right = el("div", "head-right");
    if (spec && spec.metrics.length) {
      var cols = el("div", "cols");
      spec.metrics.forEach(function (m) { var c = el("span", "col-" + m, COLS[m] || m.replace(/_/g, " ")); cols.appendChild(c); });
      right.appendChild(cols);
    }
    h.appendChild(right); card.appendChild(h);
  }
  // The card's footer: "Details" (every list), and what the owner may change.
  function foot(card, name, title) {
    var f = el("div", "card-foot");
    if (name) {
      var more = button("more", "Details", function () { openDetails(name); });
      more.setAttribute("aria-label", "Details of " + title);
      f.appendChild(more);
    }
    card.appendChild(f);
    card.classList.remove("loading");
    return f;
  }
  function tabbar(card, name, tabsList, onPick) {
    if (tabsList.length < 2) { return; }
    var bar = el("div", "tabs"); bar.setAttribute("role", "tablist");
    var current = pickTab(name, tabsList);
    tabsList.forEach(function (t) {
      var on = t[0] === current;
      var b = button(on ? "tab on" : "tab", t[1], function () {
        state.tabs[name] = t[0]; saveHash(); (onPick || redraw)(name);
      });
      b.setAttribute("role", "tab"); b.setAttribute("aria-selected", on ? "true" : "false");
      bar.appendChild(b);
    });
    card.appendChild(bar);
  }
  function pickTab(name, list) {
    var ok = list.some(function (t) { return t[0] === state.tabs[name]; });
    if (!ok) { delete state.tabs[name]; }
    return ok ? state.tabs[name] : list[0][0];
  }
  function keyOf(prop) {
    if (prop.indexOf("event:props:") === 0) { return prop.slice(12); }
    return prop.split(":")[1];
  }
  function breakdownSpec(name, prop) {
    var metrics = name === "pages" && prop === "event:page" ? ["visitors", "pageviews", "scroll_depth"] : name === "events" ? ["visitors", "events"] : ["visitors"];
    var spec = { prop: prop, key: keyOf(prop), metrics: metrics };
    spec.load = function (limit, search) {
      var extra = { property: prop, limit: String(limit), metrics: metrics.join(",") };
      var more = [];
      if (name === "events") { more.push(EVENTS_ONLY); }
      // search in the server for the long tail; names made here (countries) in the page
      if (search && prop !== "visit:country") { more.push(prop + "~" + esc(search)); }
      if (more.length) { extra.filters = withFilters.apply(null, more); }
      return get("breakdown", extra).then(function (d) {
        // regions and cities come from a City database: visits without one are not a place
        return GEO[prop] ? d.results.filter(function (r) { return r[spec.key] !== "(none)"; }) : d.results;
      });
    };
    if (GEO[prop]) { spec.empty = GEO[prop]; }
    spec.onClick = name === "events" ? function (r) { eventProps(r.name); } : function (r) { addFilter(prop, r[spec.key]); };
    if (name === "events") { spec.empty = "No custom events in this period. Send them with traceglider.track(name, props), or mark elements with data-tg-event."; }
    return spec;
  }
  function panel(name) {
    var card = document.querySelector('[data-panel="' + name + '"]');
    if (!card) { return Promise.resolve(); }
    card.classList.add("loading");  // until redrawn (foot() takes it off)
    if (EXTRA[name]) { return EXTRA[name](card); }
    var def = PANELS[name];
    var prop = pickTab(name, def.tabs);
    var spec = breakdownSpec(name, prop);
    spec.title = def.title + (def.tabs.length > 1 ? " · " + def.tabs.filter(function (t) { return t[0] === prop; })[0][1] : "");
    return spec.load(10).then(function (rows) {
      card.classList.remove("loading");
      state.tabs[name] = prop;
      clear(card); head(card, def.title, spec); tabbar(card, name, def.tabs);
      table(card, spec, rows);
      foot(card, name, spec.title);
      shown[name] = spec;
    });
  }
  // One card again, for a person's click (a tab): its answer may come after the view
  // changed (Stale, dropped) or fail, and either is handled, never left uncaught.
  function redraw(name) { return panel(name).catch(showError); }
  function eventProps(name) {
    var card = document.querySelector('[data-panel="events"]');
    return get("props", { name: name }).then(function (keys) {
      var box = el("div", "props");
      box.appendChild(el("h3", "", "Properties of " + name));
      if (!keys.results.length) { box.appendChild(el("div", "empty", "This event has no properties in this period.")); }
      var old = card.querySelector(".props"); if (old) { card.removeChild(old); }
      card.appendChild(box);
      return Promise.all(keys.results.map(function (k) {
        return get("breakdown", { property: "event:props:" + k, filters: filterString([["event:name", name]]), limit: "10" })
          .then(function (data) {
            box.appendChild(el("h4", "", k));
            table(box, { prop: "event:props:" + k, key: k, metrics: ["visitors"] }, data.results);
          });
      }));
    }).catch(showError);
  }

  // -- goals, funnels, navigation ---------------------------------------------------------
  var EXTRA = {};
  EXTRA.goals = function (card) {
    var goals = state.config.goals || [];
    var spec = { prop: "event:goal", key: "goal", metrics: ["visitors", "events", "conversion_rate"], title: "Goal conversions",
      onClick: function (r) { addFilter("event:goal", r.goal); }, noFilterHint: true,
      empty: "No conversions of these goals in this period." };
    spec.load = function () {
      if (!goals.length) { return Promise.resolve([]); }
      return get("goals", { metrics: "visitors,events,conversion_rate" }).then(function (d) { return d.results; });
    };
    return spec.load().then(function (rows) {
      clear(card); head(card, "Goal conversions", goals.length ? spec : null);
      if (!goals.length) {
        card.appendChild(el("div", "empty", "No goals yet. A goal counts the visitors who saw a page (such as /signup/**) or sent a custom event (such as Signup)."));
      } else { table(card, spec, rows); }
      manageButton(foot(card, goals.length ? "goals" : null, spec.title), "goals");
      shown.goals = spec;
    });
  };
  EXTRA.funnel = function (card) {
    var funnels = state.config.funnels || [];
    var which = pickTab("funnel", funnels.map(function (f) { return [f.name, f.name]; }).concat([["", ""]]));
    var f = funnels.filter(function (x) { return x.name === which; })[0] || funnels[0];
    if (!f) {
      clear(card); head(card, "Funnels", null);
      card.appendChild(el("div", "empty", "No funnel yet. A funnel shows how many visitors go through 2 to 8 steps (pages or events) in order, within one visit."));
      manageButton(foot(card, null), "funnels");
      return Promise.resolve();
    }
    var spec = { prop: "", key: "label", metrics: ["visitors", "conversion_rate", "dropoff"], title: "Funnel · " + f.name, noFilterHint: true };
    spec.load = function () {
      return get("funnel", { steps: f.steps.join(",") }).then(function (data) {
        return data.steps.map(function (s) { return { label: s.step + ". " + s.goal, visitors: s.visitors, conversion_rate: s.conversion_rate, dropoff: s.dropoff }; });
      });
    };
    return spec.load().then(function (rows) {
      clear(card); head(card, "Funnel", spec);
      tabbar(card, "funnel", funnels.map(function (x) { return [x.name, x.name]; }));
      table(card, spec, rows);
      manageButton(foot(card, "funnel", spec.title), "funnels");
      shown.funnel = spec;
    });
  };
  EXTRA.navigation = function (card) {
    var page = null;
    state.filters.forEach(function (f) { if (f[0] === "event:page" && !f[2] && f[1].indexOf("*") < 0) { page = f[1]; } });
    if (!page) {
      clear(card); head(card, "Navigation", null);
      card.appendChild(el("div", "empty", "Pick a page in Top pages (or filter by one) to see the pages its visitors came from and went to next."));
      foot(card, null);
      return Promise.resolve();
    }
    var q = { path: page, filters: state.filters.filter(function (f) { return f[0] !== "event:page"; })
      .map(function (f) { return f[0] + (f[2] || "==") + esc(f[1]); }).join(";") };
    var spec = { prop: "event:page", key: "page", metrics: ["pageviews"], title: "Navigation · " + page, noFilterHint: true };
    spec.load = function () {
      return get("navigation", q).then(function (data) {
        return data.previous.map(function (r) { return { page: r.page, side: "came from", pageviews: r.pageviews }; })
          .concat(data.next.map(function (r) { return { page: r.page, side: "went next", pageviews: r.pageviews }; }));
      });
    };
    spec.columns = [["side", "Direction"]];
    return spec.load().then(function (rows) {
      clear(card); head(card, "Navigation · " + page, spec);
      ["came from", "went next"].forEach(function (side) {
        card.appendChild(el("h3", "", side === "came from" ? "Came from" : "Went next"));
        table(card, { prop: "event:page", key: "page", metrics: ["pageviews"], empty: "None in this period." },
          rows.filter(function (r) { return r.side === side; }));
      });
      foot(card, "navigation", spec.title);
      shown.navigation = spec;
    });
  };

  // -- Web Vitals, JavaScript errors, environment -------------------------------------------
  var VITAL_INFO = { LCP: "Largest Contentful Paint", INP: "Interaction to Next Paint", CLS: "Cumulative Layout Shift",
    FCP: "First Contentful Paint", TTFB: "Time to First Byte" };
  function vitalValue(metric, v) {
    if (v === null || v === undefined) { return "–"; }
    if (metric === "CLS") { return String(Math.round(v * 1000) / 1000); }
    return v >= 1000 ? (Math.round(v / 100) / 10) + " s" : Math.round(v) + " ms";
  }
  function shares(r) {
    var bar = el("div", "shares");
    [["g", r.good], ["n", r.ni], ["p", r.poor]].forEach(function (s) { var x = el("span", s[0]); x.style.width = s[1] + "%"; bar.appendChild(x); });
    bar.title = "good " + r.good + "%, needs improvement " + r.ni + "%, poor " + r.poor + "%";
    return bar;
  }
  EXTRA.vitals = function (card) {
    var tabsList = Object.keys(VITAL_INFO).map(function (m) { return [m, m]; });
    var metric = pickTab("vitals", tabsList);
    var spec = { prop: "event:page", key: "page", metrics: ["p75", "good", "ni", "poor", "samples"], bar: "samples",
      title: "Web Vitals · " + metric + " by page", keyLabel: "Page",
      show: function (r) { return r.page === null ? "(none)" : r.page; },
      onClick: function (r) { addFilter("event:page", r.page); },
      format: function (m, v) { return m === "p75" ? vitalValue(metric, v) : fmt(m, v); },
      empty: "No Web Vitals in this period yet. The script measures them on every page by itself." };
    var data = null;
    spec.load = function (limit) {
      return get("vitals", { metric: metric, limit: String(limit) }).then(function (d) { data = data || d; return d.pages; });
    };
    return spec.load(10).then(function (rows) {
      clear(card); head(card, "Web Vitals", null);
      var grid = el("div", "vitals");
      data.metrics.forEach(function (m) {
        var box = button("vital" + (m.metric === metric ? " on" : ""), null, function () { state.tabs.vitals = m.metric; saveHash(); redraw("vitals"); });
        box.setAttribute("aria-pressed", m.metric === metric ? "true" : "false");
        box.title = VITAL_INFO[m.metric] + ": the 75th percentile of " + m.samples + " samples";
        box.appendChild(el("div", "vital-name", m.metric + " · p75"));
        box.appendChild(el("div", "vital-value " + (m.rating || ""), vitalValue(m.metric, m.p75)));
        box.appendChild(shares(m));
        box.appendChild(el("div", "vital-samples", m.samples ? fmt("visitors", m.samples) + " samples" : "no samples"));
        grid.appendChild(box);
      });
      card.appendChild(grid);
      var h = el("div", "card-head");
      h.appendChild(el("h3", "", metric + " by page"));
      var cols = el("div", "cols");
      spec.metrics.forEach(function (c) { cols.appendChild(el("span", "col-" + c, COLS[c])); });
      h.appendChild(cols); card.appendChild(h);
      table(card, spec, rows);
      foot(card, "vitals", spec.title);
      shown.vitals = spec;
    });
  };
  EXTRA.errors = function (card) {
    var tabsList = [["message", "Messages"], ["page", "Pages"]];
    var tab = pickTab("errors", tabsList);
    var message = tab === "page" ? state.tabs["errors.message"] || "" : "";
    if (tab !== "page") { delete state.tabs["errors.message"]; }
    var spec = { prop: tab === "page" ? "event:page" : "", key: tab === "page" ? "page" : "message", keyLabel: tab === "page" ? "Page" : "Message",
      metrics: tab === "page" ? ["count", "visitors", "last_seen"] : ["count", "visitors", "pages", "last_seen"],
      title: "JavaScript errors",
      empty: "No JavaScript errors in this period. They are sent only where the script has data-errors=\"true\"." };
    spec.load = function (limit) {
      var q = { limit: String(limit) };
      if (tab === "page") { q.by = "page"; if (message) { q.message = message; } }
      return get("errors", q).then(function (d) { return d.results; });
    };
    // a message: its pages; a page: the dashboard filtered by it
    spec.onClick = tab === "page" ? function (r) { addFilter("event:page", r.page); } : function (r) {
      state.tabs.errors = "page"; state.tabs["errors.message"] = r.message; saveHash(); redraw("errors");
    };
    return spec.load(10).then(function (rows) {
      clear(card); head(card, "JavaScript errors", spec);
      tabbar(card, "errors", tabsList);
      if (tab === "page" && message) {
        var sub = el("div", "sub"); sub.appendChild(el("span", "", "Pages of the error: "));
        sub.appendChild(el("code", "", message));
        sub.appendChild(button("chip-x", "×", function () { delete state.tabs["errors.message"]; saveHash(); redraw("errors"); }));
        card.appendChild(sub);
      }
      table(card, spec, rows);
      foot(card, "errors", spec.title);
      shown.errors = spec;
    });
  };
  EXTRA.environment = function (card) {
    var tabsList = [["screen", "Screen sizes"], ["language", "Languages"], ["timezone", "Time zones"]];
    var prop = pickTab("environment", tabsList);
    // the visit's (its first page's), so a row filters the dashboard
    var filterProp = { screen: "visit:screen", language: "visit:language", timezone: "visit:timezone" }[prop];
    var spec = { prop: filterProp, key: prop, metrics: ["visitors"], title: "Environment · " + tabsList.filter(function (t) { return t[0] === prop; })[0][1],
      keyLabel: tabsList.filter(function (t) { return t[0] === prop; })[0][1] };
    if (filterProp) { spec.onClick = function (r) { if (r[prop] !== "(none)") { addFilter(filterProp, r[prop]); } }; }
    spec.load = function (limit) { return get("environment", { group: prop, limit: String(limit) }).then(function (d) { return d.results; }); };
    return spec.load(10).then(function (rows) {
      clear(card); head(card, "Environment", spec);
      tabbar(card, "environment", tabsList);
      table(card, spec, rows);
      foot(card, "environment", spec.title);
      shown.environment = spec;
    });
  };

  // -- the details view ----------------------------------------------------------------
  var detailRows = [], detailSort = null, DETAIL_ROWS = 100, detailLimit = DETAIL_ROWS;
  function openDetails(name) {
    if (!shown[name]) { return; }
    state.details = name; saveHash();
    var spec = shown[name], box = $("details");
    box.hidden = false; document.body.classList.add("modal-open");
    $("details-title").textContent = spec.title || name;
    $("details-search").value = "";
    detailSort = null; detailLimit = DETAIL_ROWS;
    loadDetails("");
    $("details-search").focus();
  }
  function closeDetails() {
    state.details = ""; saveHash();
    detailsAsked += 1; $("details-rows").classList.remove("loading");  // an answer still coming is of no view
    $("details").hidden = true; document.body.classList.remove("modal-open");
  }
  // Answers can come out of order (a short search is slower than the longer one typed
  // after it; another details view opened meanwhile): only the last one asked is shown.
  var searchTimer = null, detailsAsked = 0;
  function loadDetails(search) {
    var spec = shown[state.details]; if (!spec) { return; }
    var asked = ++detailsAsked;
    var body = $("details-rows"); body.classList.add("loading");
    spec.load(1000, search).then(function (rows) {
      if (asked !== detailsAsked) { return; }
      body.classList.remove("loading");
      var s = search.toLowerCase();
      detailRows = rows.filter(function (r) {
        return !s || [spec.key].concat((spec.columns || []).map(function (c) { return c[0]; })).some(function (k) {
          return String(r[k]).toLowerCase().indexOf(s) >= 0 || (k === spec.key && display(spec.prop, r[k]).toLowerCase().indexOf(s) >= 0);
        });
      });
      renderDetails();
    }).catch(function (e) { if (asked === detailsAsked) { body.classList.remove("loading"); showError(e); } });
  }
  function detailColumns(spec) {
    return [[spec.key, spec.keyLabel || (spec.prop ? capital(propName(spec.prop)) : "Name")]].concat(spec.columns || [])
      .concat(spec.metrics.map(function (m) { return [m, COLS[m] || m]; }));
  }
  function renderDetails() {
    var spec = shown[state.details]; if (!spec) { return; }
    var cols = detailColumns(spec), rows = detailRows.slice();
    if (detailSort) {
      var k = detailSort[0], dir = detailSort[1];
      rows.sort(function (a, b) {
        var x = a[k], y = b[k];
        if (typeof x === "number" || typeof y === "number") { return dir * ((Number(x) || 0) - (Number(y) || 0)); }
        return dir * String(x === null ? "" : x).localeCompare(String(y === null ? "" : y));
      });
    }
    var t = $("details-rows"); clear(t);
    var thead = el("thead"), tr = el("tr");
    cols.forEach(function (c, i) {
      var th = el("th", i ? "n" : "");
      var on = detailSort && detailSort[0] === c[0];
      th.setAttribute("aria-sort", on ? (detailSort[1] > 0 ? "ascending" : "descending") : "none");
      th.appendChild(button("sort", c[1] + (on ? (detailSort[1] > 0 ? " ▲" : " ▼") : ""), function () {
        detailSort = [c[0], on && detailSort[1] < 0 ? 1 : on ? -1 : i ? -1 : 1];
        renderDetails();
      }));
      tr.appendChild(th);
    });
    thead.appendChild(tr); t.appendChild(thead);
    var tb = el("tbody");
    // the first rows at once, the rest when asked: laying out 1,000 rows would cost more
    // than the rest of the page (the count, the sort and the CSV are of all of them)
    rows.slice(0, detailLimit).forEach(function (r) {
      var row = el("tr");
      cols.forEach(function (c, i) {
        var td = el("td", i ? "n" : "");
        if (i === 0 && spec.onClick) {
          td.appendChild(button("link", spec.show ? spec.show(r) : display(spec.prop, r[c[0]]), function () { closeDetails(); spec.onClick(r); }));
        } else {
          td.textContent = i === 0 ? (spec.show ? spec.show(r) : display(spec.prop, r[c[0]])) : (spec.metrics.indexOf(c[0]) >= 0 ? (spec.format || fmt)(c[0], r[c[0]]) : String(r[c[0]] === null || r[c[0]] === undefined ? "" : r[c[0]]));
        }
        row.appendChild(td);
      });
      tb.appendChild(row);
    });
    if (rows.length > detailLimit) {
      var more = el("tr", "more-row"), cell = el("td");
      cell.colSpan = cols.length;
      cell.appendChild(button("more", "Show all " + rows.length + " rows", function () { detailLimit = Infinity; renderDetails(); }));
      more.appendChild(cell); tb.appendChild(more);
    }
    t.appendChild(tb);
    $("details-count").textContent = rows.length + (rows.length === 1 ? " row" : " rows");
    shownRows = [cols, rows];
  }
  var shownRows = null;
  // CSV of exactly what the details view shows (search and order), values as stored.
  function csv() {
    if (!shownRows) { return; }
    var cell = function (v) {
      var s = v === null || v === undefined ? "" : String(v);
      if (/^[=+\-@\t\r]/.test(s)) { s = "'" + s; }  // a spreadsheet must not run it as a formula
      return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    };
    var lines = [shownRows[0].map(function (c) { return cell(c[1]); }).join(",")];
    shownRows[1].forEach(function (r) { lines.push(shownRows[0].map(function (c) { return cell(r[c[0]]); }).join(",")); });
    var blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
    var a = el("a"); a.href = URL.createObjectURL(blob);
    a.download = (state.site + "-" + state.details + "-" + (state.date || state.period) + ".csv").replace(/[^\w.,-]+/g, "_");
    document.body.appendChild(a); a.click(); document.body.removeChild(a);
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
  }

  // -- refresh -------------------------------------------------------------------------
  // The owner's "Manage" buttons come from manage.js. Both scripts are deferred, but this
  // one starts drawing once it has run, so manage.js may arrive after the goals and
  // funnel cards are drawn: the footers are kept, and get their button when it does.
  var addManage = null, manageFoots = {};
  function manageButton(footer, what) {
    manageFoots[what] = footer;
    if (addManage) { addManage(footer, what); }
  }
  function setManage(fn) {
    addManage = fn;
    Object.keys(manageFoots).forEach(function (what) { if (manageFoots[what].isConnected) { fn(manageFoots[what], what); } });
  }
  function allPanels() {
    return Object.keys(PANELS).concat(Object.keys(EXTRA)).filter(function (n) { return document.querySelector('[data-panel="' + n + '"]'); });
  }
  function refresh(quiet) {
    state.gen += 1;
    $("error").hidden = true;
    state.age = 0; $("age").textContent = "";
    saveHash(); renderFilters(); chartControls(); syncPeriod();
    if (!quiet) { document.querySelectorAll("[data-panel]").forEach(function (c) { c.classList.add("loading"); }); }
    var gen = state.gen;
    // busy until the headline, the chart and every panel of this view are drawn (or it
    // failed): a cue for assistive technology, and what the browser tests wait for
    document.body.setAttribute("aria-busy", "true");
    var jobs = [get("config").then(function (cfg) { state.config = cfg; })];
    return jobs[0].then(function () {
      return Promise.all([state.period === "realtime" ? liveHeadline() : headline(), chart()].concat(allPanels().map(panel)));
    }).then(function () {
      if (gen !== state.gen) { return; }
      document.querySelectorAll("[data-panel]").forEach(function (c) { c.classList.remove("loading"); });
      if (state.details && shown[state.details] && $("details").hidden) { openDetails(state.details); }
    }).catch(showError).then(function () {
      if (gen === state.gen) { document.body.removeAttribute("aria-busy"); }
    });
  }
  function liveHeadline() {
    return Promise.all([get("realtime"), get("aggregate", { metrics: "visitors,pageviews" })]).then(function (a) {
      var box = $("headline"); clear(box);
      [["Current visitors", a[0], "visitors", "in the last 5 minutes"], ["Unique visitors", a[1].results.visitors.value, "visitors", "in the last 30 minutes"],
        ["Pageviews", a[1].results.pageviews.value, "pageviews", "in the last 30 minutes"]].forEach(function (s) {
        var card = el("div", "stat");
        card.appendChild(el("div", "stat-label", s[0]));
        card.appendChild(el("div", "stat-value", fmt(s[2], s[1])));
        card.appendChild(el("div", "stat-change flat", s[3]));
        box.appendChild(card);
      });
    });
  }
  function realtime() {
    if (!state.site) { return; }
    var site = state.site;
    fetch("/dashboard/api/realtime?site_id=" + encodeURIComponent(site), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (n) { if (n !== null && site === state.site) { $("realtime").textContent = "● " + short(n) + " current visitor" + (n === 1 ? "" : "s"); } })
      .catch(function () { /* the next tick tries again */ });
  }
  function share() {
    fetch("/dashboard/api/shares?site_id=" + encodeURIComponent(state.site), { method: "POST", credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        var box = $("sharebox"); clear(box); box.hidden = false;
        box.appendChild(el("h2", "", "Read-only link for " + s.site));
        var input = el("input"); input.readOnly = true; input.value = window.location.origin + s.url; box.appendChild(input);
        box.appendChild(button("", "Revoke", function () {
          fetch("/dashboard/api/shares/" + encodeURIComponent(s.id), { method: "DELETE", credentials: "same-origin" })
            .then(function () { box.hidden = true; });
        }));
      }).catch(showError);
  }
  function theme(toggle) {
    var saved = localStorage.getItem("tg-theme");
    if (toggle) {
      var dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
      saved = dark ? "light" : "dark"; localStorage.setItem("tg-theme", saved);
    }
    if (saved) { document.documentElement.dataset.theme = saved; }
  }
  // The range picker shows the range of the URL, "Yesterday" included.
  function syncPeriod() {
    var sel = $("period");
    var yesterday = state.period === "day" && state.date === iso(addDays(today(), -1));
    sel.value = yesterday ? "yesterday" : state.period;
    $("custom").hidden = state.period !== "custom";
    if (state.period === "custom") { var d = state.date.split(","); $("from").value = d[0] || ""; $("to").value = d[1] || ""; }
    var r = range();
    $("range").textContent = state.period === "realtime" ? "" : iso(r[0]) === iso(r[1]) ? iso(r[0]) : iso(r[0]) + " – " + iso(r[1]);
  }
  function setPeriod(value) {
    state.details = "";
    if (value === "yesterday") { state.period = "day"; state.date = iso(addDays(today(), -1)); } else { state.period = value; state.date = ""; }
    if (value === "custom") { state.date = iso(addDays(today(), -6)) + "," + iso(today()); }
    refresh();
  }
  // Plausible's keys for the range picker.
  var KEYS = { d: "day", e: "yesterday", r: "realtime", w: "7d", t: "30d", m: "month", s: "6mo", y: "12mo", c: "custom" };
  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var tag = (e.target && e.target.tagName) || "";
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(tag) || (e.target && e.target.isContentEditable)) { return; }
    if (e.key === "Escape") { if (!$("details").hidden) { closeDetails(); } if (!$("manage").hidden) { $("manage-close").click(); } return; }
    if (!$("details").hidden || !$("manage").hidden) { return; }
    var k = e.key.toLowerCase();
    if (KEYS[k]) { e.preventDefault(); setPeriod(KEYS[k]); return; }
    if (k === "x") { state.compare = !state.compare; refresh(); return; }
    if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && state.period !== "realtime") { e.preventDefault(); shift(e.key === "ArrowLeft" ? -1 : 1); }
  }
  // ← and →: the same range one length earlier or later (never past today).
  function shift(dir) {
    var r = range(), days = Math.round((r[1] - r[0]) / 86400000) + 1, t = today();
    if (state.period === "month") {
      var m = monthStart(r[0], -dir);
      if (m > t) { return; }
      state.date = iso(m);
    } else if (state.period === "6mo" || state.period === "12mo") {
      var back = state.period === "6mo" ? 6 : 12, next = monthStart(new Date(state.date ? state.date + "T00:00:00Z" : t), -dir * back);
      if (next > t) { return; }
      state.date = iso(next);
    } else {
      var a = addDays(r[0], dir * days), b = addDays(r[1], dir * days);
      if (b > t) { return; }
      if (state.period === "day") { state.date = iso(a); } else { state.period = "custom"; state.date = iso(a) + "," + iso(b); }
    }
    refresh();
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
      document.body.classList.toggle("owner", me.role === "owner");
      refresh(); realtime();
      setInterval(function () { realtime(); if (state.period === "realtime" && !document.hidden) { refresh(true); } }, 30000);
    }).catch(showError);
    $("site").addEventListener("change", function (e) {
      // another site: nothing of the one before stays on the page while this one loads
      state.site = e.target.value; state.filters = []; state.details = ""; state.tabs = {};
      $("realtime").textContent = "";
      placeholders(); clear($("chart"));
      document.querySelectorAll("[data-panel]").forEach(function (c) { clear(c); c.appendChild(el("div", "empty", "Loading…")); });
      refresh(); realtime();
    });
    $("period").addEventListener("change", function (e) { setPeriod(e.target.value); });
    $("apply").addEventListener("click", function () {
      if ($("from").value && $("to").value && $("from").value <= $("to").value) { state.date = $("from").value + "," + $("to").value; refresh(); }
    });
    $("metric").addEventListener("change", function (e) { state.metric = e.target.value; saveHash(); chartControls(); chart().catch(showError); });
    $("interval").addEventListener("change", function (e) { state.interval = e.target.value; saveHash(); chart().catch(showError); });
    $("compare").addEventListener("change", function (e) { state.compare = e.target.checked; refresh(); });
    $("theme").addEventListener("click", function () { theme(true); });
    $("share").addEventListener("click", share);
    $("details-close").addEventListener("click", closeDetails);
    $("details").addEventListener("click", function (e) { if (e.target === $("details")) { closeDetails(); } });
    $("details-search").addEventListener("input", function (e) {
      clearTimeout(searchTimer); var v = e.target.value.trim();
      searchTimer = setTimeout(function () { loadDetails(v); }, 250);
    });
    $("details-csv").addEventListener("click", csv);
    document.addEventListener("keydown", onKey);
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { if (lastChart) { renderChart.apply(null, lastChart); } }, 100);
    });
  }
  window.TG = { state: state, fmt: fmt, flag: flag, flagsDrawn: flagsDrawn, ticks: ticks, el: el, clear: clear, button: button, get: get, send: send,
    refresh: refresh, showError: showError, display: display, register: function (name, fn) { EXTRA[name] = fn; },
    table: table, head: head, tabbar: tabbar, pickTab: pickTab, shown: shown, withFilters: withFilters, addFilter: addFilter,
    setManage: setManage };
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
