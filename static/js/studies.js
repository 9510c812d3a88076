/* ReadRoom study page: a series thumbnail that cannot be shown (none rendered yet, not allowed in a
   preview, not an image) is replaced by a neutral placeholder. Loaded from /static (CSP: no inline
   handlers). */
(function () {
  "use strict";

  function showPlaceholder(img) {
    var placeholder = img.nextElementSibling;
    if (placeholder && placeholder.classList.contains("thumb-placeholder")) {
      img.hidden = true;
      placeholder.hidden = false;
    }
  }

  function watch(img) {
    // The image may have failed before this deferred script ran: check, then listen.
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) {
      showPlaceholder(img);
      return;
    }
    img.addEventListener("error", function () { showPlaceholder(img); });
  }

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    document.querySelectorAll("img[data-thumb]").forEach(watch);
  });
})();
