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

// A run's live progress: on a run page whose run has not ended,
// #run-live[data-events] names the console's relay of the run's event
// stream. Events update the status, the record count, the latest
// progress and the stream rows; "end" marks the section ended and
// reloads the page once, so the final facts render from the host. Event
// data is only ever set as text.
function followRun() {
  var live = document.getElementById("run-live");
  if (!live || live.getAttribute("data-ended") !== "false" || !live.getAttribute("data-events")) {
    return;
  }
  if (typeof window.EventSource !== "function") {
    notice(live, "This browser cannot follow the run live (no EventSource): reload the page to see its progress.");
    return;
  }
  var source = new window.EventSource(live.getAttribute("data-events"));
  var ended = false;

  function parse(e) {
    try {
      return JSON.parse(e.data);
    } catch (err) {
      notice(live, "A live event could not be read; reload the page for the run's latest facts.");
      return null;
    }
  }

  source.addEventListener("open", function () {
    notice(live, "");
  });
  source.addEventListener("status", function (e) {
    var ev = parse(e);
    if (ev) {
      setStatus(ev.status);
    }
  });
  source.addEventListener("progress", function (e) {
    var ev = parse(e);
    if (!ev) {
      return;
    }
    setRecords(ev);
    setProgress(document.getElementById("run-progress"), ev, true);
    if (ev.stream) {
      setProgress(streamCell(ev.stream), ev, false);
    }
  });
  source.addEventListener("records", function (e) {
    var ev = parse(e);
    if (ev) {
      setRecords(ev);
    }
  });
  source.addEventListener("end", function (e) {
    ended = true;
    source.close();
    var ev = parse(e);
    if (ev) {
      setStatus(ev.status);
      setRecords(ev);
    }
    live.setAttribute("data-ended", "true");
    reloadOnce(live);
  });
  source.addEventListener("error", function () {
    if (ended) {
      return;
    }
    if (source.readyState === window.EventSource.CLOSED) {
      notice(live, "Live progress stopped: the console refused the event stream (has the session ended?). Reload the page.");
    } else {
      notice(live, "Live progress was interrupted; reconnecting…");
    }
  });
}

// notice shows msg in the live section's notice ("" hides it).
function notice(live, msg) {
  var el = document.getElementById("run-live-notice");
  if (!el) {
    el = document.createElement("p");
    el.id = "run-live-notice";
    el.className = "error";
    el.setAttribute("role", "alert");
    live.insertBefore(el, live.firstChild);
  }
  el.textContent = msg;
  el.hidden = msg === "";
}

function setStatus(status) {
  var el = document.getElementById("run-status");
  if (el && status) {
    el.textContent = status;
    el.className = "badge badge-" + status.replace(/[^a-z_]/g, "");
  }
}

function setRecords(ev) {
  var el = document.getElementById("run-records");
  if (el && typeof ev.records === "number") {
    el.textContent = String(ev.records);
  } else if (el && ev.kind === "end") {
    el.textContent = "0";
  }
  var received = document.getElementById("run-received");
  if (typeof ev.received === "number" && ev.received > 0) {
    if (!received && el && el.parentNode) {
      received = document.createElement("span");
      received.id = "run-received";
      received.className = "muted";
      el.parentNode.appendChild(received);
    }
    if (received) {
      received.textContent = " (" + ev.received + " received)";
    }
  }
}

// setProgress writes a progress event into el: its message, done of
// total, and a <progress> when the total is known.
function setProgress(el, ev, withStream) {
  if (!el) {
    return;
  }
  while (el.firstChild) {
    el.removeChild(el.firstChild);
  }
  var parts = [];
  if (withStream && ev.stream) {
    parts.push(ev.stream + ":");
  }
  if (typeof ev.done === "number" || typeof ev.total === "number") {
    var done = ev.done || 0;
    parts.push(ev.total ? done + " of " + ev.total : String(done));
  }
  if (ev.message) {
    parts.push(ev.message);
  }
  var text = document.createElement("span");
  text.textContent = parts.length ? parts.join(" ") : "working…";
  el.appendChild(text);
  if (ev.total > 0) {
    var bar = document.createElement("progress");
    bar.max = ev.total;
    bar.value = Math.min(ev.done || 0, ev.total);
    bar.textContent = Math.round(100 * bar.value / ev.total) + "%";
    el.appendChild(document.createElement("br"));
    el.appendChild(bar);
  }
}

// streamCell returns the progress cell of a stream's row of
// #run-streams, adding the row for a stream the page did not list.
function streamCell(name) {
  var row = document.getElementById("stream-" + name);
  if (!row) {
    var table = document.getElementById("run-streams");
    var body = table && table.tBodies[0];
    if (!body) {
      return null;
    }
    row = document.createElement("tr");
    row.id = "stream-" + name;
    var nameCell = document.createElement("td");
    var code = document.createElement("code");
    code.textContent = name;
    nameCell.appendChild(code);
    var held = document.createElement("td");
    held.className = "stream-held";
    held.textContent = "—";
    var progress = document.createElement("td");
    progress.className = "stream-progress";
    row.appendChild(nameCell);
    row.appendChild(held);
    row.appendChild(progress);
    row.appendChild(document.createElement("td"));
    body.appendChild(row);
  }
  return row.querySelector(".stream-progress");
}

// reloadOnce reloads the page after a run's end, once per run and tab:
// the host then renders the final facts (and data-ended="true").
function reloadOnce(live) {
  var key = "connhost-reloaded:" + live.getAttribute("data-events");
  try {
    if (window.sessionStorage.getItem(key)) {
      notice(live, "The run ended. Reload the page for its final facts.");
      return;
    }
    window.sessionStorage.setItem(key, "1");
  } catch (err) {
    // No storage: reload anyway; the reloaded page has ended and does
    // not follow again.
  }
  window.location.reload();
}

document.addEventListener("DOMContentLoaded", function () {
  localizeTimes(document);
  followRun();
  if (window.connhostLive) {
    window.connhostLive();
  }
});
