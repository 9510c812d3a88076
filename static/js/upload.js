/* ReadRoom study upload: drag and drop files, folders or a .zip; one file per request with its own
   progress bar and an overall one; a per-file result list; failed uploads retried (a file that was
   already stored answers "already present", never a second copy). Loaded from /static (CSP). */
(function () {
  "use strict";

  var CONCURRENCY = 3;
  var MAX_ATTEMPTS = 3; // automatic tries for network errors and server errors (5xx)
  var LABELS = {
    queued: "Waiting", uploading: "Uploading", processing: "Checking", stored: "Stored",
    duplicate: "Already present", conflict: "Conflict", rejected: "Rejected", skipped: "Skipped", failed: "Failed"
  };
  var FINAL = { stored: 1, duplicate: 1, conflict: 1, rejected: 1, skipped: 1, failed: 1 };

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function formatBytes(n) {
    if (n < 1024) { return n + " B"; }
    var units = ["KB", "MB", "GB", "TB"];
    var value = n;
    var unit = -1;
    do { value /= 1024; unit += 1; } while (value >= 1024 && unit < units.length - 1);
    return value.toFixed(value < 10 ? 1 : 0) + " " + units[unit];
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  ready(function () {
    var form = document.getElementById("upload-form");
    if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
    var endpoint = form.getAttribute("data-endpoint");
    var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || Infinity;
    var dropzone = document.getElementById("dropzone");
    var fileInput = document.getElementById("file-input");
    var folderInput = document.getElementById("folder-input");
    var panel = document.getElementById("upload-progress");
    var list = document.getElementById("upload-results");
    var overall = document.getElementById("overall-progress");
    var overallPercent = document.getElementById("overall-percent");
    var overallDetail = document.getElementById("overall-detail");
    var retryButton = document.getElementById("retry-failed");
    var clearButton = document.getElementById("clear-finished");
    var studyLinks = document.getElementById("study-links");
    var csrfInput = form.querySelector("input[name=csrfmiddlewaretoken]");

    var items = [];
    var queue = [];
    var active = 0;
    var studies = {};
    var renderPending = false;

    function csrfToken() {
      var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
      return match ? decodeURIComponent(match[1]) : (csrfInput ? csrfInput.value : "");
    }

    // --- the list ----------------------------------------------------------------------------
    function addItem(file, path, inFolder) {
      var row = el("li", "upload-item is-queued");
      var name = el("span", "name", path || file.name);
      var size = el("span", "size", formatBytes(file.size));
      var bar = el("progress");
      bar.max = 100;
      bar.value = 0;
      bar.setAttribute("aria-label", "Upload of " + (path || file.name));
      var status = el("span", "status");
      var badge = el("span", "badge status-queued", LABELS.queued);
      status.appendChild(badge);
      var reason = el("span", "reason");
      row.appendChild(name);
      row.appendChild(size);
      row.appendChild(bar);
      row.appendChild(status);
      row.appendChild(reason);
      list.appendChild(row);
      var item = { file: file, path: path || file.name, inFolder: inFolder, loaded: 0, attempts: 0,
                   state: "queued", row: row, bar: bar, badge: badge, reason: reason, result: null };
      items.push(item);
      queue.push(item);
      return item;
    }

    function setState(item, state, reasonText) {
      item.state = state;
      item.row.className = "upload-item is-" + state;
      item.badge.className = "badge status-" + state;
      item.badge.textContent = LABELS[state] || state;
      if (reasonText !== undefined) { item.reason.textContent = reasonText; }
      scheduleRender();
    }

    function showEntries(item, entries) {
      if (!entries || !entries.length) { return; }
      var details = el("details", "entries");
      details.appendChild(el("summary", null, entries.length + " file" + (entries.length === 1 ? "" : "s") +
                                              " in the archive"));
      var ul = el("ul");
      entries.forEach(function (entry) {
        var li = el("li");
        li.appendChild(el("span", "badge status-" + entry.status, LABELS[entry.status] || entry.status));
        li.appendChild(document.createTextNode(" " + entry.file + (entry.reason ? " — " + entry.reason : "")));
        ul.appendChild(li);
      });
      details.appendChild(ul);
      item.row.appendChild(details);
    }

    function noteStudy(url, uid) {
      if (!url || studies[url]) { return; }
      studies[url] = true;
      var link = el("a", null, "Open study " + (uid ? "…" + uid.slice(-12) : ""));
      link.href = url;
      studyLinks.appendChild(link);
      studyLinks.hidden = false;
    }

    function finish(item, body) {
      item.result = body;
      item.loaded = item.file.size;
      item.bar.value = 100;
      setState(item, body.status, body.reason || "");
      showEntries(item, body.entries);
      noteStudy(body.study_url, body.study_instance_uid);
      (body.entries || []).forEach(function (entry) { noteStudy(entry.study_url, entry.study_instance_uid); });
    }

    function counts() {
      var c = { stored: 0, duplicate: 0, conflict: 0, rejected: 0, skipped: 0, failed: 0 };
      items.forEach(function (item) {
        var entries = item.result && item.result.entries;
        if (entries && entries.length) {
          entries.forEach(function (entry) { c[entry.status] = (c[entry.status] || 0) + 1; });
        } else if (FINAL[item.state]) {
          c[item.state] += 1;
        }
      });
      return c;
    }

    function scheduleRender() {
      if (renderPending) { return; }
      renderPending = true;
      window.requestAnimationFrame(render);
    }

    function render() {
      renderPending = false;
      var total = 0;
      var done = 0;
      var finished = 0;
      items.forEach(function (item) {
        total += item.file.size;
        if (FINAL[item.state]) {
          done += item.file.size;
          finished += 1;
        } else {
          done += item.loaded;
        }
      });
      var allDone = items.length > 0 && finished === items.length;
      var percent = allDone ? 100 : (total ? Math.floor((done / total) * 100) : 0);
      if (!allDone && percent >= 100) { percent = 99; } // the last bytes are sent; the server is still checking
      overall.value = percent;
      overall.textContent = percent + " %";
      overallPercent.textContent = percent + " %";
      overallDetail.textContent = finished + " of " + items.length + " file" + (items.length === 1 ? "" : "s") +
        " done · " + formatBytes(done) + " of " + formatBytes(total) + (allDone ? "" : " · uploading…");
      var c = counts();
      Object.keys(c).forEach(function (key) {
        var badge = panel.querySelector("[data-count=" + key + "]");
        if (!badge) { return; }
        var words = { stored: "stored", duplicate: "already present", conflict: c[key] === 1 ? "conflict" : "conflicts",
                      rejected: "rejected", skipped: "skipped", failed: "failed" };
        badge.textContent = c[key] + " " + words[key];
        if (c[key]) { badge.removeAttribute("data-zero"); } else { badge.setAttribute("data-zero", ""); }
      });
      var failed = items.some(function (item) { return item.state === "failed"; });
      retryButton.hidden = !failed || !allDone;
      clearButton.hidden = !allDone;
      panel.setAttribute("data-state", allDone ? "done" : "running");
    }

    // --- sending -----------------------------------------------------------------------------
    function pump() {
      while (active < CONCURRENCY && queue.length) { send(queue.shift()); }
      scheduleRender();
    }

    function failOrRetry(item, message, retryable) {
      if (retryable && item.attempts < MAX_ATTEMPTS) {
        setState(item, "queued", message + " — trying again (" + (item.attempts + 1) + " of " + MAX_ATTEMPTS + ")");
        window.setTimeout(function () { queue.push(item); pump(); }, 1000 * item.attempts);
        return;
      }
      item.loaded = 0;
      item.bar.value = 0;
      setState(item, "failed", message + (retryable ? " — use “Retry failed uploads”." : ""));
    }

    function parse(xhr) {
      var type = xhr.getResponseHeader("Content-Type") || "";
      if (type.indexOf("application/json") === -1) { return null; }
      try { return JSON.parse(xhr.responseText); } catch (e) { return null; }
    }

    function send(item) {
      if (item.file.size > maxBytes) {
        finish(item, { status: "rejected", reason: "the file is " + formatBytes(item.file.size) +
                       ", more than the limit of " + formatBytes(maxBytes) + " per file" });
        return;
      }
      active += 1;
      item.attempts += 1;
      item.loaded = 0;
      setState(item, "uploading", "");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", endpoint);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable || !event.total) { return; }
        item.loaded = Math.min(item.file.size, Math.round(item.file.size * event.loaded / event.total));
        item.bar.value = Math.min(99, Math.floor(100 * event.loaded / event.total));
        if (event.loaded >= event.total && item.state === "uploading") { setState(item, "processing"); }
        scheduleRender();
      });
      xhr.addEventListener("load", function () {
        active -= 1;
        var body = parse(xhr);
        if (xhr.status === 200 && body && body.status) {
          finish(item, body);
        } else if (body && body.error) {
          var retryable = xhr.status >= 500;
          if (retryable) {
            failOrRetry(item, body.error.message, true);
          } else {
            finish(item, { status: "rejected", reason: body.error.message });
          }
        } else if (xhr.status >= 500 || xhr.status === 0) {
          failOrRetry(item, "the server answered " + xhr.status, true);
        } else {
          // A page instead of JSON: the session ended (sign-in page) or a proxy answered.
          failOrRetry(item, "your session may have ended: sign in again in another tab", false);
        }
        pump();
      });
      xhr.addEventListener("error", function () {
        active -= 1;
        failOrRetry(item, "the connection was interrupted", true);
        pump();
      });
      var data = new FormData();
      data.append("file", item.file, item.file.name);
      data.append("path", item.path);
      if (item.inFolder) { data.append("in_folder", "1"); }
      xhr.send(data);
    }

    function enqueue(files) {
      if (!files.length) { return; }
      panel.hidden = false;
      files.forEach(function (f) { addItem(f.file, f.path, f.inFolder); });
      pump();
    }

    // --- choosing and dropping ---------------------------------------------------------------
    fileInput.addEventListener("change", function () {
      enqueue(Array.prototype.map.call(fileInput.files, function (file) { return { file: file, path: file.name }; }));
      fileInput.value = "";
    });
    folderInput.addEventListener("change", function () {
      enqueue(Array.prototype.map.call(folderInput.files, function (file) {
        return { file: file, path: file.webkitRelativePath || file.name, inFolder: true };
      }));
      folderInput.value = "";
    });

    function readAllEntries(reader) {
      // readEntries answers in batches (about 100 at a time in Chromium) until an empty one.
      return new Promise(function (resolve) {
        var all = [];
        (function next() {
          reader.readEntries(function (batch) {
            if (!batch.length) { resolve(all); return; }
            all = all.concat(Array.prototype.slice.call(batch));
            next();
          }, function () { resolve(all); });
        })();
      });
    }

    function walk(entry, inFolder) {
      if (entry.isFile) {
        return new Promise(function (resolve) {
          entry.file(function (file) {
            resolve([{ file: file, path: entry.fullPath.replace(/^\//, ""), inFolder: inFolder }]);
          }, function () { resolve([]); });
        });
      }
      if (entry.isDirectory) {
        return readAllEntries(entry.createReader()).then(function (children) {
          return Promise.all(children.map(function (child) { return walk(child, true); }));
        }).then(function (nested) { return [].concat.apply([], nested); });
      }
      return Promise.resolve([]);
    }

    ["dragenter", "dragover"].forEach(function (type) {
      dropzone.addEventListener(type, function (event) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "copy";
        dropzone.classList.add("is-over");
      });
    });
    dropzone.addEventListener("dragleave", function (event) {
      if (!dropzone.contains(event.relatedTarget)) { dropzone.classList.remove("is-over"); }
    });
    dropzone.addEventListener("drop", function (event) {
      event.preventDefault();
      dropzone.classList.remove("is-over");
      var transfer = event.dataTransfer;
      // Entries must be taken while the drop event runs: the DataTransfer is emptied afterwards.
      var entries = [];
      var plain = [];
      Array.prototype.forEach.call(transfer.items || [], function (dataItem) {
        if (dataItem.kind !== "file") { return; }
        var entry = dataItem.webkitGetAsEntry ? dataItem.webkitGetAsEntry() : null;
        if (entry) { entries.push(entry); } else if (dataItem.getAsFile()) { plain.push(dataItem.getAsFile()); }
      });
      if (!entries.length && !plain.length) {
        plain = Array.prototype.slice.call(transfer.files || []);
      }
      Promise.all(entries.map(function (entry) { return walk(entry, false); })).then(function (found) {
        var files = [].concat.apply([], found);
        plain.forEach(function (file) { files.push({ file: file, path: file.name }); });
        enqueue(files);
      });
    });
    // A file dropped just beside the zone must not make the browser navigate away from the page.
    ["dragover", "drop"].forEach(function (type) {
      window.addEventListener(type, function (event) {
        if (!dropzone.contains(event.target)) { event.preventDefault(); }
      });
    });

    retryButton.addEventListener("click", function () {
      items.forEach(function (item) {
        if (item.state === "failed") {
          item.attempts = 0;
          setState(item, "queued", "");
          queue.push(item);
        }
      });
      pump();
    });
    clearButton.addEventListener("click", function () {
      items = items.filter(function (item) {
        if (FINAL[item.state] && item.state !== "failed") { item.row.remove(); return false; }
        return true;
      });
      studies = {};
      while (studyLinks.childNodes.length > 1) { studyLinks.removeChild(studyLinks.lastChild); }
      studyLinks.hidden = true;
      if (!items.length) { panel.hidden = true; }
      scheduleRender();
    });
    window.addEventListener("beforeunload", function (event) {
      if (active || queue.length) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  });
})();
