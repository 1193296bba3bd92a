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
//
// A connector may report hundreds of progress events a second: each is
// kept as the latest for its target (the status, the counts, the run's
// progress line, each stream's row) and the page is drawn at most once
// per animation frame, updating the nodes in place.
//
// When the stream errors (the host is down, the session ended) the
// section is marked stale: the status reads "unknown (connection lost)"
// and the progress is greyed, until the stream opens again.
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
  var statusEl = document.getElementById("run-status");
  // lastStatus is the run's status as last heard, restored when a lost
  // stream opens again.
  var lastStatus = statusEl ? statusEl.textContent : "";
  var pending = newPending();
  // frame is the scheduled draw (an animation frame, or a timer where
  // there are none); 0 when none is.
  var frame = 0;
  var useFrames = typeof window.requestAnimationFrame === "function";

  function newPending() {
    return { status: "", records: null, received: null, progress: null, streams: {}, committed: null, any: false };
  }

  function parse(e) {
    try {
      return JSON.parse(e.data);
    } catch (err) {
      notice(live, "A live event could not be read; reload the page for the run's latest facts.");
      return null;
    }
  }

  // keep records what ev says for each target it updates.
  function keep(ev) {
    if (ev.status) {
      pending.status = ev.status;
    }
    if (typeof ev.records === "number") {
      pending.records = ev.records;
    }
    if (typeof ev.received === "number") {
      pending.received = ev.received;
    }
    if (ev.stream_records && typeof ev.stream_records === "object") {
      pending.committed = ev.stream_records;
    }
    pending.any = true;
  }

  function schedule() {
    if (frame) {
      return;
    }
    frame = useFrames ? window.requestAnimationFrame(draw) : window.setTimeout(draw, 16);
  }

  // draw writes what is pending into the page.
  function draw() {
    frame = 0;
    var p = pending;
    pending = newPending();
    if (!p.any) {
      return;
    }
    if (p.status) {
      lastStatus = p.status;
      setStatus(p.status);
    }
    setRecords({ records: p.records, received: p.received });
    if (p.progress) {
      setProgress(document.getElementById("run-progress"), p.progress, true);
    }
    Object.keys(p.streams).forEach(function (name) {
      setProgress(streamCell(name), p.streams[name], false);
    });
    if (p.committed) {
      Object.keys(p.committed).forEach(function (name) {
        setCommitted(name, p.committed[name]);
      });
    }
  }

  // drawNow draws what is pending at once (before the end, or before
  // the section is marked stale).
  function drawNow() {
    if (frame) {
      if (useFrames) {
        window.cancelAnimationFrame(frame);
      } else {
        window.clearTimeout(frame);
      }
    }
    draw();
  }

  function stale(lost) {
    if (lost) {
      live.classList.add("stale");
      if (statusEl) {
        statusEl.textContent = "unknown (connection lost)";
        statusEl.className = "badge badge-unknown";
      }
    } else if (live.classList.contains("stale")) {
      live.classList.remove("stale");
      setStatus(lastStatus);
    }
  }

  source.addEventListener("open", function () {
    notice(live, "");
    stale(false);
  });
  source.addEventListener("status", function (e) {
    var ev = parse(e);
    if (ev) {
      keep({ status: ev.status });
      schedule();
    }
  });
  source.addEventListener("progress", function (e) {
    var ev = parse(e);
    if (!ev) {
      return;
    }
    keep({ records: ev.records, received: ev.received });
    pending.progress = ev;
    if (ev.stream) {
      pending.streams[ev.stream] = ev;
    }
    schedule();
  });
  source.addEventListener("records", function (e) {
    var ev = parse(e);
    if (ev) {
      keep({ records: ev.records, received: ev.received, stream_records: ev.stream_records });
      schedule();
    }
  });
  source.addEventListener("end", function (e) {
    ended = true;
    source.close();
    drawNow();
    stale(false);
    var ev = parse(e);
    if (ev) {
      setStatus(ev.status);
      setRecords(ev);
    }
    live.setAttribute("data-ended", "true");
    if (!leaving) {
      reloadOnce(live);
    }
  });
  // A form sent from this page (cancel, sign out) navigates away: a
  // reload at the run's end would abort that navigation and lose its
  // answer, so the page stops following.
  var leaving = false;
  document.addEventListener("submit", function () {
    leaving = true;
  });
  source.addEventListener("error", function () {
    if (ended) {
      return;
    }
    drawNow();
    stale(true);
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
// total, and a <progress> when the total is known. The text and the bar
// are made once and then updated in place.
function setProgress(el, ev, withStream) {
  if (!el) {
    return;
  }
  var text = el.querySelector(".progress-text");
  if (!text) {
    while (el.firstChild) {
      el.removeChild(el.firstChild);
    }
    text = document.createElement("span");
    text.className = "progress-text";
    el.appendChild(text);
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
  text.textContent = parts.length ? parts.join(" ") : "working…";
  var bar = el.querySelector("progress");
  if (ev.total > 0) {
    if (!bar) {
      bar = document.createElement("progress");
      el.appendChild(bar);
    }
    bar.max = ev.total;
    bar.value = Math.min(ev.done || 0, ev.total);
    bar.textContent = Math.round(100 * bar.value / ev.total) + "%";
    bar.hidden = false;
  } else if (bar) {
    bar.hidden = true;
  }
}

// setCommitted writes a stream's committed count into its row of
// #run-streams.
function setCommitted(name, n) {
  if (typeof n !== "number") {
    return;
  }
  var cell = streamCell(name);
  var held = cell && cell.parentNode.querySelector(".stream-held");
  if (held) {
    held.textContent = String(n);
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

// clearSecrets empties every password input. A page the browser keeps
// in its back/forward cache would otherwise come back, on Back, with the
// secret still typed into the credential form; a submitted form's
// values left with the request before pagehide runs.
function clearSecrets() {
  document.querySelectorAll("input[type=password]").forEach(function (el) {
    el.value = "";
  });
}

window.addEventListener("pagehide", clearSecrets);
window.addEventListener("pageshow", function (e) {
  if (e.persisted) {
    clearSecrets();
    // The rest of a restored page is as old as when it was left: reload
    // a credential page so its panel is current.
    if (document.getElementById("credential-form")) {
      window.location.reload();
    }
  }
});

document.addEventListener("DOMContentLoaded", function () {
  localizeTimes(document);
  followRun();
  if (window.connhostLive) {
    window.connhostLive();
  }
});
