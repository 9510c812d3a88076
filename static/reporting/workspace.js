/* Reading workspace: the draft saves itself (every few seconds when changed, and on leaving), with the version
   it was written from; a stale version stops autosaving and says to reload. ".name" + space/Tab expands a macro;
   "Normal" inserts a section's normal text. Sign / release / switch save first, then post their form. */
(function () {
  "use strict";

  var INTERVAL_MS = 3000;
  var KEEPALIVE_LIMIT = 60000; // browsers cap keepalive bodies at 64 kB; a larger one is sent without it

  function start() {
    var editor = document.getElementById("report-editor");
    if (!editor) { return; }
    var statusBox = document.getElementById("save-status");
    var url = editor.getAttribute("data-autosave-url");
    var csrf = editor.querySelector("input[name=csrfmiddlewaretoken]").value;
    var macros = JSON.parse(document.getElementById("rw-macros").textContent || "{}");
    var version = parseInt(editor.getAttribute("data-version"), 10);
    var dirty = false;
    var stopped = false;
    var inFlight = null;

    function show(text, kind) {
      statusBox.textContent = text;
      statusBox.className = "rw-status rw-status-" + kind;
    }

    function content() {
      var sections = {};
      var fields = {};
      editor.querySelectorAll("[data-section-code]").forEach(function (box) {
        sections[box.getAttribute("data-section-code")] = box.value;
      });
      editor.querySelectorAll("[data-field-code]").forEach(function (input) {
        fields[input.getAttribute("data-field-code")] = input.value;
      });
      return { version: version, sections: sections, fields: fields };
    }

    function clearProblems() {
      editor.querySelectorAll("[data-problem-for]").forEach(function (box) {
        box.classList.remove("has-error");
        var list = box.querySelector(":scope > .rw-problem");
        if (list) { list.textContent = ""; }
      });
    }

    function markProblems(fields) {
      var names = [];
      Object.keys(fields || {}).forEach(function (name) {
        var box = editor.querySelector('[data-problem-for="' + name + '"]');
        if (!box) { names.push(name); return; }
        box.classList.add("has-error");
        var input = box.querySelector("[data-label]");
        names.push(input ? input.getAttribute("data-label") : name);
        var list = box.querySelector(":scope > .rw-problem");
        if (list) {
          var item = document.createElement("li");
          item.textContent = fields[name].join(" ");
          list.appendChild(item);
        }
      });
      return names;
    }

    function answered(response, data) {
      if (response.ok) {
        version = data.version;
        document.querySelectorAll("input[data-version-input]").forEach(function (input) { input.value = version; });
        clearProblems();
        show("Saved · version " + version, "ok");
        return true;
      }
      if (data.code === "stale_version" || data.code === "report_final" || data.code === "not_assigned") {
        stopped = true;
        show((data.error || "This draft changed elsewhere.") + " Autosave is off: reload the page.", "error");
        return false;
      }
      clearProblems();
      var names = markProblems(data.fields);
      show("Not saved" + (names.length ? " (" + names.join(", ") + ")" : "") + ": " +
           (data.error || "the server answered " + response.status + "."), "error");
      return false;
    }

    // Resolves true once everything typed so far is saved (false: refused, or autosave stopped).
    function save(leaving) {
      if (stopped) { return Promise.resolve(false); }
      if (inFlight) { return inFlight.then(function () { return save(leaving); }); }
      if (!dirty) { return Promise.resolve(true); }
      dirty = false;
      var body = JSON.stringify(content());
      show("Saving…", "pending");
      inFlight = fetch(url, {
        method: "POST", body: body, credentials: "same-origin", keepalive: leaving && body.length < KEEPALIVE_LIMIT,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" }
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          return answered(response, data);
        });
      }, function () {
        dirty = true; // try again at the next tick
        show("Not saved: the server cannot be reached; trying again.", "error");
        return false;
      }).then(function (ok) { inFlight = null; return ok; });
      return inFlight;
    }

    function changed() {
      if (stopped) { return; }
      dirty = true;
      show("Unsaved changes · version " + version, "pending");
    }

    function expandMacro(event) {
      var box = event.target;
      if (!box.hasAttribute("data-section-code") || (event.key !== " " && event.key !== "Tab")) { return; }
      var caret = box.selectionStart;
      if (caret !== box.selectionEnd) { return; }
      var match = /(^|\s)\.([A-Za-z0-9_-]+)$/.exec(box.value.slice(0, caret));
      if (!match || !Object.prototype.hasOwnProperty.call(macros, match[2])) { return; }
      event.preventDefault();
      var text = macros[match[2]] + (event.key === " " ? " " : "");
      box.setRangeText(text, caret - match[2].length - 1, caret, "end");
      changed();
    }

    function insertNormal(button) {
      var code = button.getAttribute("data-normal-for");
      var box = document.getElementById("section-" + code);
      var normal = button.getAttribute("data-normal");
      if (!box || normal === null) { return; }
      var at = box.selectionStart;
      var before = box.value.slice(0, at);
      var glue = before && !/\s$/.test(before) ? "\n" : "";
      box.setRangeText(glue + normal, at, box.selectionEnd, "end");
      box.focus();
      changed();
    }

    // "input" covers typing, pick lists and numbers; "change" would fire again on leaving a textarea and
    // re-mark saved text as changed.
    editor.addEventListener("input", changed);
    editor.addEventListener("keydown", expandMacro);
    editor.addEventListener("submit", function (event) { event.preventDefault(); save(false); });
    editor.querySelectorAll("[data-normal-for]").forEach(function (button) {
      button.addEventListener("click", function () { insertNormal(button); });
    });
    document.querySelectorAll("form[data-save-first]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        save(false).then(function (ok) { if (ok) { form.submit(); } });
      });
    });
    setInterval(function () { if (dirty) { save(false); } }, INTERVAL_MS);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden" && dirty) { save(true); }
    });
    window.addEventListener("pagehide", function () { if (dirty) { save(true); } });
    editor.setAttribute("data-ready", "1");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
