/* Marketplace: the SLA countdowns tick between the htmx refreshes of the rows. Pages work without it. */
(function () {
  "use strict";

  function span(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var rest = minutes % 60;
    if (days) { return days + " d " + hours + " h"; }
    if (hours) { return hours + " h " + (rest < 10 ? "0" : "") + rest + " min"; }
    return rest + " min";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (clock) {
      var deadline = Date.parse(clock.getAttribute("data-deadline"));
      var label = clock.querySelector("[data-remaining]");
      if (isNaN(deadline) || !label) { return; }
      var seconds = (deadline - now) / 1000;
      label.textContent = seconds >= 0 ? span(seconds) + " left" : span(seconds) + " late";
      if (seconds < 0) { clock.classList.add("sla-late"); }
    });
  }

  setInterval(tick, 5000);
  document.addEventListener("DOMContentLoaded", tick);
})();
