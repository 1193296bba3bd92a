// connhost console script: local times, and a run's live progress. Loaded
// from the host only (the Content-Security-Policy allows nothing else).
"use strict";

// Show every <time datetime> in the viewer's zone; its title keeps UTC.
function localizeTimes(root) {
  root.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) {
      return;
    }
    el.textContent = d.toLocaleString();
  });
}

document.addEventListener("DOMContentLoaded", function () {
  localizeTimes(document);
  if (window.connhostLive) {
    window.connhostLive();
  }
});
