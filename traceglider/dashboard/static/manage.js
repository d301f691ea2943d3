// Goals and funnels, managed from the dashboard by the site's owner: add, edit, delete.
// The server validates (traceglider/site_config.py) and its message is shown as it is.
(function () {
  "use strict";
  var TG = window.TG;
  if (!TG) { return; }
  var el = TG.el, clear = TG.clear, button = TG.button;
  var $ = function (id) { return document.getElementById(id); };

  function api(kind, method, query, body) {
    var p = new URLSearchParams(); p.set("site_id", TG.state.site);
    Object.keys(query || {}).forEach(function (k) { p.set(k, query[k]); });
    return TG.send(method, "/dashboard/api/site/" + kind + "?" + p.toString(), body).then(function (cfg) {
      TG.state.config = cfg; return cfg;
    });
  }
  function field(label, input) { var l = el("label", "", label); l.appendChild(input); return l; }
  function input(value, placeholder, name) {
    var i = el("input"); i.value = value || ""; i.placeholder = placeholder || ""; if (name) { i.name = name; } return i;
  }
  function open(title) {
    $("manage").hidden = false; document.body.classList.add("modal-open");
    $("manage-title").textContent = title;
    var body = $("manage-body"); clear(body); return body;
  }
  function close() { $("manage").hidden = true; document.body.classList.remove("modal-open"); TG.refresh(); }

  // -- goals --------------------------------------------------------------------------
  function goalForm(body, old) {
    var form = el("form", "form"); form.noValidate = true;
    var kind = el("select"); kind.name = "kind"; kind.setAttribute("aria-label", "Goal type");
    [["page", "Page visit"], ["event", "Custom event"]].forEach(function (o) { var x = el("option", "", o[1]); x.value = o[0]; kind.appendChild(x); });
    var isPage = !old || old.indexOf("Visit ") === 0;
    kind.value = isPage ? "page" : "event";
    var value = input(old ? (isPage ? old.slice(6) : old) : "", "", "value");
    var hint = el("div", "age");
    function hints() {
      value.placeholder = kind.value === "page" ? "/signup or /blog/** (* within a segment, ** across)" : "Signup";
      value.setAttribute("aria-label", kind.value === "page" ? "Page path" : "Event name");
      hint.textContent = kind.value === "page" ? "Counts the visitors who saw a matching page." : "Counts the visitors who sent this event (traceglider.track or data-tg-event).";
    }
    kind.addEventListener("change", hints); hints();
    var row = el("div", "form-row"); row.appendChild(kind); row.appendChild(value);
    var save = el("button", "primary", old ? "Save goal" : "Add goal"); save.type = "submit";
    row.appendChild(save);
    if (old) { row.appendChild(button("", "Cancel", function () { goals(); })); }
    var error = el("div", "form-error"); error.setAttribute("role", "alert");
    form.appendChild(row); form.appendChild(hint); form.appendChild(error);
    form.addEventListener("submit", function (e) {
      e.preventDefault(); error.textContent = "";
      var v = value.value.trim();
      var goal = kind.value === "page" ? "Visit " + v : v;
      api("goals", old ? "PUT" : "POST", old ? { goal: old } : {}, { goal: goal })
        .then(function () { goals(); }).catch(function (err) { error.textContent = err.message; });
    });
    body.appendChild(form);
    value.focus();
  }
  function goals(editing) {
    var body = open("Goals of " + TG.state.site);
    var list = el("div", "manage-list");
    var all = TG.state.config.goals || [];
    if (!all.length) { list.appendChild(el("div", "empty", "No goals yet: add the first one below.")); }
    all.forEach(function (g) {
      var item = el("div", "manage-item");
      item.appendChild(el("span", "label", g));
      item.appendChild(button("", "Edit", function () { goals(g); }));
      var del = button("", "Delete", function () {
        if (del.dataset.sure !== "1") { del.dataset.sure = "1"; del.textContent = "Delete?"; return; }
        api("goals", "DELETE", { goal: g }).then(function () { goals(); }).catch(TG.showError);
      });
      del.setAttribute("aria-label", "Delete " + g);
      item.appendChild(del);
      list.appendChild(item);
    });
    body.appendChild(list);
    body.appendChild(el("h3", "", editing ? "Change " + editing : "Add a goal"));
    goalForm(body, editing);
  }

  // -- funnels ------------------------------------------------------------------------
  function funnelForm(body, old) {
    var form = el("form", "form"); form.noValidate = true;
    var name = input(old ? old.name : "", "Sign-up", "name"); name.setAttribute("aria-label", "Funnel name");
    form.appendChild(field("Name", name));
    var steps = el("div", "form"), stepInputs = [];
    function addStep(v) {
      if (stepInputs.length >= 8) { return; }
      var i = input(v, stepInputs.length ? "Visit /pricing or Signup" : "Visit /", "step");
      i.setAttribute("aria-label", "Step " + (stepInputs.length + 1));
      stepInputs.push(i); steps.appendChild(i);
    }
    (old ? old.steps : ["", ""]).forEach(addStep);
    form.appendChild(el("div", "age", "Steps in order, 2 to 8: a page (Visit /path, globs allowed) or a custom event name."));
    form.appendChild(steps);
    var row = el("div", "form-row");
    row.appendChild(button("", "+ Step", function () { addStep(""); }));
    var save = el("button", "primary", old ? "Save funnel" : "Add funnel"); save.type = "submit"; row.appendChild(save);
    if (old) { row.appendChild(button("", "Cancel", function () { funnels(); })); }
    form.appendChild(row);
    var error = el("div", "form-error"); error.setAttribute("role", "alert"); form.appendChild(error);
    form.addEventListener("submit", function (e) {
      e.preventDefault(); error.textContent = "";
      var f = { name: name.value, steps: stepInputs.map(function (i) { return i.value.trim(); }).filter(Boolean) };
      api("funnels", old ? "PUT" : "POST", old ? { name: old.name } : {}, f)
        .then(function () { funnels(); }).catch(function (err) { error.textContent = err.message; });
    });
    body.appendChild(form);
  }
  function funnels(editing) {
    var body = open("Funnels of " + TG.state.site);
    var list = el("div", "manage-list");
    var all = TG.state.config.funnels || [];
    if (!all.length) { list.appendChild(el("div", "empty", "No funnels yet: add the first one below.")); }
    all.forEach(function (f) {
      var item = el("div", "manage-item");
      item.appendChild(el("span", "label", f.name + ": " + f.steps.join(" → ")));
      item.appendChild(button("", "Edit", function () { funnels(f); }));
      var del = button("", "Delete", function () {
        if (del.dataset.sure !== "1") { del.dataset.sure = "1"; del.textContent = "Delete?"; return; }
        api("funnels", "DELETE", { name: f.name }).then(function () { funnels(); }).catch(TG.showError);
      });
      del.setAttribute("aria-label", "Delete " + f.name);
      item.appendChild(del);
      list.appendChild(item);
    });
    body.appendChild(list);
    body.appendChild(el("h3", "", editing ? "Change " + editing.name : "Add a funnel"));
    funnelForm(body, editing);
  }

  // The goals and funnel cards' footers get a "Manage" button for the owner (those
  // drawn before this script arrived too: see setManage in dashboard.js).
  TG.setManage(function (footer, what) {
    if (TG.state.role !== "owner") { return; }
    var b = button("more manage", what === "goals" ? "Manage goals" : "Manage funnels", function () { (what === "goals" ? goals : funnels)(); });
    footer.appendChild(b);
  });
  document.addEventListener("DOMContentLoaded", function () {
    $("manage-close").addEventListener("click", close);
    $("manage").addEventListener("click", function (e) { if (e.target === $("manage")) { close(); } });
  });
})();
