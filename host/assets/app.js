// zscope dashboard: live chart (uPlot), alerts, detector controls, status.
"use strict";

const MAX_POINTS = 10000; // points the chart holds while live
const FLAG_ANOMALY = 1, FLAG_WARMING = 2, FLAG_INVALID = 4, FLAG_NOVEL = 32;

// Chart columns: x (s), value, mean, upper, lower, anomaly, gap marker.
let cols = [[], [], [], [], [], [], []];
let paused = false, zoomed = false, dirty = false;
let alerts = [];          // undismissed alerts (one per event), newest first
// Dismissed alerts, by their first sample's key, remembered across reloads (bounded).
const DISMISSED = "zscope.dismissed";
let dismissed = new Set(JSON.parse(localStorage.getItem(DISMISSED) || "[]"));
let quietAlerts = false;  // a snapshot re-shows alerts without a beep
let held = null, heldDropped = 0; // live points that arrived while paused (bounded columns)
let alerted = new Set();  // samples (sequence number @ time) already part of an alert
let lastEvent = null;     // the alert the newest flagged sample belongs to
// New alert rows wait while the pointer is over the list (oldest first), so a row never moves
// under a click when alerts come several a second; they go in when the pointer leaves.
let waitingRows = [], pointerOnAlerts = false;
let lastBeep = 0;
let config = null;
let pageName = "zscope";  // the tab's title: the device's name when there are several
let deviceShown = "";     // the device's name on its alerts, when there are several

const $ = (id) => document.getElementById(id);

// The device this page shows (`?device=NAME`; without it, the daemon's first), and its routes.
const DEVICE = new URLSearchParams(location.search).get("device");
if (DEVICE) deviceShown = DEVICE;
const api = (path) => DEVICE ? `/api/devices/${encodeURIComponent(DEVICE)}/${path}` : `/api/${path}`;

// Points come as columns ({t: [...], value: [...], ...}, the API's and the WebSocket's one
// shape) and stay columns: the page reads point i of them where it needs it, and copies
// columns to columns.
const size = (c) => (c && c.t ? c.t.length : 0);
// The columns the page reads: what it keeps of a point it holds.
const FIELDS = ["t", "value", "mean", "std", "z", "threshold", "flags", "seq", "lost_before"];
const noPoints = () => Object.fromEntries(FIELDS.map((k) => [k, []]));
function copyPoint(dst, src, i) { for (const k of FIELDS) dst[k].push(src[k][i]); }
const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x)) ? "–" : Number(x).toFixed(d);

// While paused, live points wait (at most 2 x MAX_POINTS, the oldest dropped and counted)
// instead of growing the chart; their alerts are raised at once. Resume draws them.
function push(c, i, quiet = false) {
  if (paused && !quiet) {
    if (!held) held = noPoints();
    copyPoint(held, c, i);
    if (size(held) > 2 * MAX_POINTS) {
      heldDropped += size(held) - MAX_POINTS;
      for (const k of FIELDS) held[k] = held[k].slice(-MAX_POINTS);
    }
    if (c.flags[i] & FLAG_ANOMALY) alertOf(c, i);
    return;
  }
  draw(c, i, quiet);
}

// Every point of columns `c`, as history (no alerts) or live.
function drawAll(c, quiet) { for (let i = 0; i < size(c); i++) draw(c, i, quiet); }

function alertOf(c, i) {
  alert({ t: c.t[i], value: c.value[i], z: c.z[i], seq: c.seq[i], novel: !!(c.flags[i] & FLAG_NOVEL) });
}

// Point i of columns `c` onto the chart's columns.
function draw(c, i, quiet) {
  const t = c.t[i], value = c.value[i], mean = c.mean[i], std = c.std[i];
  const thr = c.threshold[i], flags = c.flags[i], lost = c.lost_before[i];
  const x = t / 1000;
  if (lost > 0 && cols[0].length) {
    // A break in the line, and a marker, where frames were lost.
    cols[0].push(x - 1e-6); cols[1].push(null); cols[2].push(null); cols[3].push(null);
    cols[4].push(null); cols[5].push(null); cols[6].push(value);
  }
  const judged = !(flags & (FLAG_WARMING | FLAG_INVALID));
  const band = judged && Number.isFinite(thr) ? thr * std : null;
  cols[0].push(x);
  cols[1].push(flags & FLAG_INVALID ? null : value);
  cols[2].push(judged ? mean : null);
  cols[3].push(band === null ? null : mean + band);
  cols[4].push(band === null ? null : mean - band);
  cols[5].push(flags & FLAG_ANOMALY ? value : null);
  cols[6].push(null);
  if (flags & FLAG_ANOMALY && !quiet) alertOf(c, i);
}

function trim() {
  const extra = cols[0].length - MAX_POINTS;
  if (extra > 0 && !paused) cols = cols.map((c) => c.slice(extra));
}

// One time format everywhere: the browser's local time, 24 h, ISO's order.
const pad = (n, w = 2) => String(n).padStart(w, "0");
function clock(ms, withMs) {
  const d = new Date(ms);
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMs ? `${hms}.${pad(d.getMilliseconds(), 3)}` : hms;
}
function day(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
const stamp = (ms) => `${day(ms)} ${clock(ms, false)}`;
// A duration in plain words: "250 ms", "7.5 s", "12 min", "2.0 h", "3.0 days".
function duration(ms) {
  const trim = (x) => String(Number(x.toFixed(x < 10 ? 1 : 0)));
  if (ms < 1000) return `${trim(ms)} ms`;
  if (ms < 60_000) return `${trim(ms / 1000)} s`;
  if (ms < 3_600_000) return `${trim(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${trim(ms / 3_600_000)} h`;
  return `${trim(ms / 86_400_000)} days`;
}
// The x axis's labels: the time of day (with ms when ticks are under a second apart), the
// date where a tick starts a new day or ticks are days apart; at least 90 px between ticks,
// so labels never overlap.
function timeTicks(u, splits, axis, space, incr) {
  let lastDay = null;
  return splits.map((s) => {
    const ms = s * 1000, today = day(ms);
    const label = incr >= 86_400 ? today : clock(ms, incr < 1);
    const first = lastDay !== null && today !== lastDay;
    lastDay = today;
    return first && incr < 86_400 ? `${today}\n${label}` : label;
  });
}

const chart = new uPlot({
  width: 800, height: 420,
  scales: { x: { time: true } },
  cursor: { drag: { x: true, y: false, setScale: true } },
  series: [
    {},
    { label: "value", stroke: "#4fa3ff", width: 1.2, spanGaps: false },
    { label: "expected", stroke: "#e0b83a", width: 1.6, dash: [6, 3], spanGaps: false },
    { label: "upper", stroke: "rgba(79,163,255,0.35)", width: 1, spanGaps: false },
    { label: "lower", stroke: "rgba(79,163,255,0.35)", width: 1, spanGaps: false },
    { label: "anomaly", stroke: "#ff4d4f", width: 0, paths: () => null,
      points: { show: true, size: 8, fill: "#ff4d4f", stroke: "#ff4d4f" } },
    { label: "lost frames", stroke: "#8a97a6", width: 0, paths: () => null,
      points: { show: true, size: 10, fill: "#8a97a6", stroke: "#8a97a6" } },
  ],
  bands: [{ series: [3, 4], fill: "rgba(79,163,255,0.12)" }],
  axes: [
    { stroke: "#8a97a6", grid: { stroke: "#243040" }, space: 90, values: timeTicks },
    // Labelled with the source and its unit once the device says them (renderSource).
    { stroke: "#8a97a6", grid: { stroke: "#243040" }, label: "value", labelSize: 20 },
  ],
  hooks: {
    // Only a drag-selection by the user is a zoom (uPlot also sets scales when it sizes itself).
    // In the stored history, a zoom fetches that range afresh, at the chart's resolution.
    setSelect: [(u) => {
      if (u.select.width <= 0) return;
      if (historyView) {
        const from = u.posToVal(u.select.left, "x") * 1000;
        const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        showHistory(from, to);
      } else { zoomed = true; note(); }
    }],
  },
}, cols, $("chart"));

// The chart takes its panel's width and the window's height below it (less the legend's
// line and the panel's margin), at least 300 px.
function resize() {
  const w = $("chart").clientWidth || 800;
  const top = $("chart").getBoundingClientRect().top + window.scrollY;
  const below = $("legend").offsetHeight + 40;
  chart.setSize({ width: w, height: Math.max(300, Math.round(window.innerHeight - top - below)) });
}
window.addEventListener("resize", resize);
resize();

function note() {
  // The stored history says what it shows; the paused note would hide that.
  if (historyView) { $("chart-note").textContent = historyView.note; $("pause").textContent = "Resume"; return; }
  const come = size(held) + heldDropped;
  $("chart-note").textContent = paused
    ? `paused${come ? `: ${come} new points wait${heldDropped ? ` (the oldest ${heldDropped} dropped)` : ""}` : ""}`
    : zoomed ? "zoomed: live updates keep your zoom" : "";
  $("pause").textContent = paused ? "Resume" : "Pause";
}

// The page's own frame timing (read by page-bench): when each chart draw finished, the last
// 1000.
const drawTimes = [];
let pointsReceived = 0, batchesReceived = 0; // live points and their messages, for page-bench
// More points than twice the chart's pixel columns: draw each column's lowest and highest
// value (and every anomaly, lost-frames marker and break in the line), in time order. The
// picture is the same (a spike keeps its height); the chart's work is bounded by its width, so
// 10 000 points/s still draw at full frame rate.
function decimate(c, width) {
  const n = c[0].length;
  if (n <= 2 * width) return c;
  const x0 = c[0][0], span = (c[0][n - 1] - x0) || 1;
  const out = c.map(() => []);
  const values = c[1];
  let col = -1, lo = -1, hi = -1;
  const keep = [];
  const emit = () => {
    if (lo >= 0) keep.push(lo);
    if (hi >= 0 && hi !== lo) keep.push(hi);
    keep.sort((a, b) => a - b);
    let last = -1;
    for (const i of keep) {
      if (i === last) continue;
      last = i;
      for (let s = 0; s < c.length; s++) out[s].push(c[s][i]);
    }
    keep.length = 0;
  };
  for (let i = 0; i < n; i++) {
    const k = Math.min(width - 1, ((c[0][i] - x0) / span * width) | 0);
    if (k !== col) { emit(); col = k; lo = hi = -1; }
    const v = values[i];
    if (v === null || c[5][i] !== null || c[6][i] !== null) keep.push(i);
    else {
      if (lo < 0 || v < values[lo]) lo = i;
      if (hi < 0 || v > values[hi]) hi = i;
    }
  }
  emit();
  return out;
}

// Live points are played out at the pace they were taken, not drawn in the frame they land
// in: the daemon sends every 10 ms, but its messages reach the page in bursts, so a frame would
// often have nothing new and the next one two messages' worth. A point is due at its own time
// plus the least delay its messages have had lately (two seconds' worth, so a drifting device
// clock is followed) plus PLAYOUT_MS: a late message catches up at once, and nothing shows more
// than PLAYOUT_MS after it arrived.
const PLAYOUT_MS = 30;
// Messages waiting to be played, oldest first: {c: their columns, base: the delay added to
// their points' times, next: the first point not yet played}; `waiting` points in all.
let playout = [], waiting = 0;
let lagNow = Infinity, lagBefore = Infinity, lagSince = 0;
function schedule(points) {
  if (waiting > MAX_POINTS) { play(Infinity); trim(); } // a hidden tab
  const n = size(points), now = performance.now(), lag = now - points.t[n - 1];
  if (now - lagSince > 2000) { lagBefore = lagNow; lagNow = Infinity; lagSince = now; }
  lagNow = Math.min(lagNow, lag);
  playout.push({ c: points, base: Math.min(lagNow, lagBefore) + PLAYOUT_MS, next: 0 });
  waiting += n;
}
function play(now) {
  while (playout.length) {
    const m = playout[0], n = size(m.c);
    while (m.next < n && m.c.t[m.next] + m.base <= now) {
      push(m.c, m.next);
      m.next++; waiting--;
      dirty = true;
    }
    if (m.next < n) return;
    playout.shift();
  }
}

function redraw(now) {
  play(now);
  if (dirty && !paused) {
    trim();
    // Zoomed in, the chart draws only what is in view: the points as they are.
    chart.setData(zoomed ? cols : decimate(cols, Math.max(100, chart.bbox.width / devicePixelRatio | 0)), !zoomed);
    $("points-count").textContent = cols[0].length;
    dirty = false;
    drawTimes.push(performance.now());
    if (drawTimes.length > 1000) drawTimes.shift();
  }
  requestAnimationFrame(redraw);
}
requestAnimationFrame(redraw);

$("pause").onclick = () => {
  // Back from a notification's moment: the live page afresh.
  if (onMoment) { location.replace(DEVICE ? `/?device=${encodeURIComponent(DEVICE)}` : "/"); return; }
  if (leaveHistory()) paused = true;
  paused = !paused;
  if (!paused) {
    drawAll(held, true); // their alerts were raised as they came
    held = null; heldDropped = 0;
  }
  dirty = true; note();
};
setInterval(() => { if (paused) note(); }, 1000);
$("reset-zoom").onclick = () => { zoomed = false; dirty = true; chart.setData(cols, true); note(); };
chart.over.addEventListener("dblclick", () => { zoomed = false; note(); });

$("load-earlier").onclick = async () => {
  const oldest = cols[0].length ? cols[0][0] * 1000 : Date.now();
  const res = await fetch(api(`samples?to=${oldest - 0.001}&limit=${MAX_POINTS}`));
  if (!res.ok) return;
  const older = await res.json();
  if (!size(older)) { $("chart-note").textContent = "no earlier points in memory: Hour, Day, Week and All show the stored history"; return; }
  paused = true; note();
  const saved = cols; cols = [[], [], [], [], [], [], []];
  // Earlier points are history: they are drawn, but raise no alerts.
  drawAll(older, true);
  cols = cols.map((c, i) => c.concat(saved[i]));
  chart.setData(cols, true);
  $("points-count").textContent = cols[0].length;
};

// ---- the stored history: any range, as each pixel column's min and max (so a spike shows
// at every zoom), the mean, and every anomaly exactly; from the daemon's store ----
let historyView = null;        // {from, to} while the stored history is shown
let liveCols = null;       // the live chart, kept while the history is shown
async function showHistory(from, to) {
  const columns = Math.max(100, Math.min(4000, chart.bbox.width / devicePixelRatio | 0));
  const range = from === null ? "" : `from=${Math.round(from)}&to=${Math.round(to)}&`;
  const res = await fetch(api(`samples?${range}points=${columns}`));
  const answer = await res.json();
  if (!res.ok) { $("chart-note").textContent = answer.error || `error ${res.status}`; return; }
  if (!historyView) { liveCols = cols; paused = true; }
  const span = answer.t.length ? [answer.t[0], answer.t[answer.t.length - 1] + answer.bucket_ms] : [from || 0, to || 0];
  historyView = { from: from === null ? span[0] : from, to: to === null ? span[1] : to };
  // Buckets at their middle, anomalies at their own time: the two (each in time order)
  // merged onto one x axis.
  const a = answer.anomalies, half = answer.bucket_ms / 2;
  cols = [[], [], [], [], [], [], []];
  const put = (t, mean, hi, lo, anomaly) => {
    cols[0].push(t / 1000); cols[1].push(mean); cols[2].push(null);
    cols[3].push(hi); cols[4].push(lo); cols[5].push(anomaly); cols[6].push(null);
  };
  for (let i = 0, j = 0; i < answer.t.length || j < a.t.length;) {
    if (j === a.t.length || (i < answer.t.length && answer.t[i] + half <= a.t[j])) {
      put(answer.t[i] + half, answer.mean[i], answer.max[i], answer.min[i], null); i++;
    } else {
      put(a.t[j], a.value[j], null, null, a.value[j]); j++;
    }
  }
  chart.setData(cols, false);
  chart.setScale("x", { min: historyView.from / 1000, max: historyView.to / 1000 });
  $("points-count").textContent = cols[0].length;
  const per = duration(answer.bucket_ms);
  const viewed = `history ${stamp(historyView.from)} – ${stamp(historyView.to)}`;
  // A run shorter than the view is drawn across it, not in a sliver at one side.
  const ts = cols[0];
  if (ts.length > 1 && (ts[ts.length - 1] - ts[0]) * 1000 < (historyView.to - historyView.from) / 2) {
    chart.setScale("x", { min: ts[0], max: ts[ts.length - 1] });
  }
  historyView.note = !ts.length
    ? `${viewed}: no data here; Resume follows live`
    : `${viewed}: min–max and mean per ${per} (from the ${answer.source}), ${a.t.length} anomalies${answer.anomalies_truncated ? " (the latest)" : ""}; Resume follows live`;
  note();
  document.body.dataset.view = "history";
}
function leaveHistory() {
  if (!historyView) return false;
  historyView = null; cols = liveCols; liveCols = null; zoomed = false;
  delete document.body.dataset.view;
  return true;
}
for (const b of document.querySelectorAll(".history-buttons [data-span]")) {
  b.onclick = () => {
    const span = Number(b.dataset.span);
    if (!span) { showHistory(null, null); return; }
    const to = Date.now();
    showHistory(to - span, to);
  };
}
const shift = (dir) => {
  if (!historyView) return;
  const half = (historyView.to - historyView.from) / 2;
  showHistory(historyView.from + dir * half, historyView.to + dir * half);
};
$("earlier").onclick = () => shift(-1);
$("later").onclick = () => shift(1);

// A notification's link (/?at=MS) opens the page paused on that moment: the minute either side.
const AT = Number(new URLSearchParams(location.search).get("at"));
let atShown = false, onMoment = false;
async function showMoment(at) {
  const res = await fetch(api(`samples?from=${at - 60000}&to=${at + 60000}&limit=${MAX_POINTS}`));
  if (!res.ok) return;
  const around = await res.json();
  // Older than the points in memory (gone from it, or from before a restart): the stored
  // history around it.
  if (!size(around) || around.t[0] > at) { onMoment = true; await showHistory(at - 60000, at + 60000); return; }
  paused = true; onMoment = true; note();
  cols = [[], [], [], [], [], [], []];
  drawAll(around, true);
  chart.setData(cols, true);
  $("points-count").textContent = cols[0].length;
  $("chart-note").textContent = `showing ${stamp(at)} (from a notification): Resume to follow live`;
}

// ---- alerts ----
function beep() {
  if (quietAlerts) return;
  const now = performance.now();
  if (!$("sound").checked || now - lastBeep < 300) return;
  lastBeep = now;
  try {
    const ctx = beep.ctx || (beep.ctx = new AudioContext());
    const osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = 880; gain.gain.value = 0.05;
    osc.connect(gain).connect(ctx.destination);
    osc.start(); osc.stop(ctx.currentTime + 0.08);
  } catch (e) { /* no audio: fine */ }
}

const SHOWN_ALERTS = 100; // alert rows kept in the page; the count covers them all

// One alert per event: consecutive flagged samples extend the newest alert (its count and
// its largest |z|) instead of adding rows; a sample already alerted (a reconnect's snapshot)
// adds nothing.
function alert(a) {
  const key = `${a.seq}@${a.t}`; // a device restart reuses sequence numbers, not times
  if (alerted.has(key)) return;
  alerted.add(key);
  if (alerted.size > 20000) alerted = new Set([...alerted].slice(-10000));
  const extend = lastEvent && a.seq === lastEvent.last + 1
    && (lastEvent.gone || lastEvent.li.isConnected || waitingRows.includes(lastEvent.li));
  if (extend) {
    lastEvent.last = a.seq;
    if (lastEvent.gone) return; // the rest of a dismissed event
    lastEvent.count += 1;
    if (Math.abs(a.z) > Math.abs(lastEvent.z)) { lastEvent.z = a.z; lastEvent.value = a.value; }
    lastEvent.novel = lastEvent.novel && a.novel; // "new level" only while every sample is one
    lastEvent.li.querySelector(".detail").textContent = detail(lastEvent);
    return;
  }
  a.last = a.seq; a.count = 1; a.key = key;
  lastEvent = a;
  if (dismissed.has(key)) { a.gone = true; return; } // dismissed before a reload
  alerts.unshift(a);
  if (alerts.length > 500) alerts.length = 500;
  beep();
  // Add one row; existing rows stay as they are (a click never lands on a replaced node).
  const li = document.createElement("li");
  li.className = "alert";
  const time = clock(a.t, true);
  // With several devices, each alert names its own.
  li.innerHTML = `<span>${time}</span>${deviceShown ? '<span class="device"></span>' : ""}<span class="detail"></span>`;
  if (deviceShown) li.querySelector(".device").textContent = deviceShown;
  li.querySelector(".detail").textContent = detail(a);
  a.li = li;
  const b = document.createElement("button");
  b.textContent = "×"; b.title = "dismiss";
  li.dataset.key = key;
  b.onclick = () => { forget([a]); alerts = alerts.filter((x) => x !== a); li.remove(); renderCount(); };
  li.appendChild(b);
  if (!pointerOnAlerts) showRows([li]);
  else if (waitingRows.push(li) > SHOWN_ALERTS) waitingRows.shift(); // the list's worth waits
  renderCount();
}

// Put rows (oldest first) at the top of the list, keeping it to SHOWN_ALERTS.
function showRows(rows) {
  const list = $("alerts");
  for (const li of rows) list.prepend(li);
  while (list.children.length > SHOWN_ALERTS) list.lastChild.remove();
}

$("alerts").addEventListener("pointerenter", () => { pointerOnAlerts = true; });
$("alerts").addEventListener("pointerleave", () => {
  pointerOnAlerts = false;
  showRows(waitingRows);
  waitingRows = [];
  renderCount();
});

function detail(a) {
  const run = a.count > 1 ? ` · ${a.count} samples` : "";
  // Why it was flagged, in words: a level never visited (inside the band), or beyond it.
  const why = a.novel ? "new level · " : "";
  return `${why}value ${fmt(a.value)} · z ${fmt(a.z, 2)}${run}`;
}

function renderCount() {
  $("alert-count").textContent = alerts.length;
  $("alerts-waiting").textContent = waitingRows.length ? `${waitingRows.length} new: shown when the pointer leaves the list` : "";
  document.title = alerts.length ? `(${alerts.length}) ${pageName}` : pageName;
}

// Remember dismissals across reloads (the newest 1000).
function forget(list) {
  for (const a of list) { dismissed.add(a.key); a.gone = true; }
  if (dismissed.size > 1000) dismissed = new Set([...dismissed].slice(-1000));
  try { localStorage.setItem(DISMISSED, JSON.stringify([...dismissed])); } catch (e) { /* private mode */ }
}

function clearAlerts() {
  forget(alerts);
  alerts = [];
  lastEvent = null;
  waitingRows = [];
  $("alerts").replaceChildren();
  renderCount();
}

$("dismiss-all").onclick = clearAlerts;

// ---- status and config ----
function renderStatus(s) {
  const on = s.connected;
  $("connection").textContent = on ? "connected" : "disconnected";
  $("connection").className = "pill " + (on ? "on" : "off");
  const name = DEVICE ? `${DEVICE}: ` : "";
  // Samples but no hello yet: the daemon has asked the device who it is.
  const identifying = s.counters.samples > 0 && !s.link_error;
  $("device").textContent = s.device
    ? `${name}${s.device.board} · firmware ${s.device.firmware} · ${s.port}`
    : `${name}${identifying ? "identifying the device" : "waiting for a device"} on ${s.port}`;
  $("rate").textContent = Math.round(s.rate);
  $("st-samples").textContent = s.counters.samples;
  $("st-anomalies").textContent = s.counters.anomalies;
  $("st-lost").textContent = s.counters.frames_lost;
  const bad = s.decode;
  $("st-bad").textContent = s.bad_frames;
  $("st-bad").title = `oversize ${bad.oversize}, cobs ${bad.cobs}, truncated ${bad.truncated}, crc ${bad.crc}, malformed ${bad.malformed}, version ${bad.version}`;
  $("st-restarts").textContent = s.counters.device_restarts;
  const q = s.quality;
  for (const el of document.querySelectorAll(".truth")) el.style.display = q ? "" : "none";
  if (q) { $("st-precision").textContent = fmt(q.precision); $("st-recall").textContent = fmt(q.recall); $("st-f1").textContent = fmt(q.f1); }
  $("link-error").textContent = s.link_error || "";
  $("ended").textContent = s.ended || "";
  const logErr = (s.logs || []).find((l) => l.error);
  $("log-status").textContent = logErr ? `log: ${logErr.error} (${logErr.pending} rows waiting)` : "";
  if (s.config) renderConfig({ version: s.config_version, config: s.config });
  renderSource(s);
}

// ---- the source: what the device judges, its unit, its sensor's errors ----
let sourcesShown = "";
function renderSource(s) {
  const d = s.device;
  const sources = (d && d.sources) || [];
  $("source-panel").hidden = sources.length === 0;
  const listed = sources.join(",");
  const select = $("source");
  if (listed !== sourcesShown) {
    sourcesShown = listed;
    select.replaceChildren(...sources.map((name) => new Option(name, name)));
  }
  if (d && d.source && document.activeElement !== select) select.value = d.source;
  const unit = d && d.unit ? ` (${d.unit})` : "";
  const label = d && d.source ? `${d.source}${unit}` : "value";
  if (chart.axes[1].label !== label) { chart.axes[1].label = label; chart.redraw(false); }
  const errors = s.device_status ? s.device_status.sensor_errors || 0 : 0;
  $("source-now").textContent = d && d.source
    ? `judging ${d.source}${d.unit ? ", in " + d.unit : ""}` +
      (errors ? ` · ${errors} sensor error${errors === 1 ? "" : "s"} (readings not judged)` : "")
    : "";
  $("source-error").textContent = s.source_error || "";
}

$("source-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const st = $("source-status");
  st.className = "muted"; st.textContent = "sent; waiting for the device to acknowledge…";
  try {
    const res = await fetch(api("source"), {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ source: $("source").value }),
    });
    const answer = await res.json();
    if (res.ok) {
      st.className = "ok"; st.textContent = `switched to ${answer.source}: config v${answer.version}, learning afresh`;
    } else {
      st.className = "error"; st.textContent = answer.error || `error ${res.status}`;
    }
  } catch (e) {
    st.className = "error"; st.textContent = `cannot reach the daemon: ${e}`;
  }
};

// The detector in a config: "Window", {"Seasonal": {...}} or {"Adaptive": {...}}.
function detectorOf(cfg) {
  const b = cfg.baseline;
  if (b && b.Adaptive) return { name: "adaptive", ...b.Adaptive };
  if (b && b.Seasonal) return { name: "seasonal", ...b.Seasonal, alpha: round(b.Seasonal.alpha) };
  return { name: "zscore" };
}

// The policy for flagged values: kept out of the baseline, at most max_run in a row ("Exclude"),
// or let in ("Include": null here).
function maxRunOf(cfg) {
  const p = cfg.policy;
  return p && p.Exclude ? p.Exclude.max_run : null;
}

// A setting the device holds as f32, as it was typed (0.2, not 0.20000000298023224).
const round = (x) => Number(Number(x).toPrecision(6));

function showFields() {
  const name = $("detector").value;
  for (const el of document.querySelectorAll(".for-adaptive")) el.style.display = name === "adaptive" ? "" : "none";
  for (const el of document.querySelectorAll(".for-seasonal")) el.style.display = name === "seasonal" ? "" : "none";
}
$("detector").onchange = showFields;

function renderConfig(c) {
  if (!c.config) return;
  const changed = !config || config.version !== c.version;
  config = c;
  const d = detectorOf(c.config);
  $("config-version").textContent = `v${c.version}`;
  const extra = d.name === "adaptive" ? `, learn ${d.learn}, rest ${d.rest}`
    : d.name === "seasonal" ? `, period ${d.period}, alpha ${d.alpha}` : "";
  const maxRun = maxRunOf(c.config);
  $("config-now").textContent = `in force: ${d.name}, window ${c.config.window}, threshold ` +
    `${round(c.config.threshold)}${extra}, warm-up ${c.config.warmup ?? "default"}, ` +
    (maxRun === null ? "flagged values let in" : `flagged values kept out (at most ${maxRun} in a row)`) +
    (c.capacity ? ` (capacity ${c.capacity})` : "");
  const editing = $("config-form").contains(document.activeElement);
  if (changed && !editing) {
    $("detector").value = d.name;
    $("threshold").value = round(c.config.threshold);
    $("window").value = c.config.window;
    $("warmup").value = c.config.warmup ?? "";
    $("max-run").value = maxRunOf(c.config) ?? "";
    if (d.name === "adaptive") { $("learn").value = d.learn; $("rest").value = d.rest; }
    if (d.name === "seasonal") { $("period").value = d.period; $("alpha").value = d.alpha; }
    showFields();
  }
}

$("config-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const detector = $("detector").value;
  const body = { detector, threshold: Number($("threshold").value), window: Number($("window").value) };
  const num = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  // Blank means the default warm-up, and letting every value in.
  const orNull = (id) => ($(id).value === "" ? null : Number($(id).value));
  body.warmup = orNull("warmup");
  body.max_run = orNull("max-run");
  if (detector === "adaptive") { body.learn = num("learn"); body.rest = num("rest"); }
  if (detector === "seasonal") { body.seasonal_period = num("period"); body.alpha = num("alpha"); }
  const st = $("config-status");
  st.className = "muted"; st.textContent = "sent; waiting for the device to acknowledge…";
  try {
    const res = await fetch(api("config"), {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await res.json();
    if (res.ok) {
      st.className = "ok"; st.textContent = `acknowledged by the device: config v${answer.version}`;
      renderConfig(answer);
    } else {
      st.className = "error"; st.textContent = answer.error || `error ${res.status}`;
    }
  } catch (e) {
    st.className = "error"; st.textContent = `cannot reach the daemon: ${e}`;
  }
};

// ---- devices: an overview when there are several, one click to each ----
// The last minute as a line through each second's min and max (a spike stays visible).
function sparkline(spark) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${spark.length} 20`);
  svg.setAttribute("preserveAspectRatio", "none");
  const seen = spark.filter((c) => c);
  if (seen.length) {
    const lo = Math.min(...seen.map((c) => c[0])), hi = Math.max(...seen.map((c) => c[1]));
    const y = (v) => (hi > lo ? 19 - ((v - lo) / (hi - lo)) * 18 : 10).toFixed(2);
    const pts = [];
    spark.forEach((c, i) => { if (c) pts.push(`${i},${y(c[0])}`, `${i + 0.5},${y(c[1])}`); });
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(line);
  }
  return svg;
}

// Each device's row, made once and then updated in place, so a click on its link never lands
// on a node replaced by the next refresh.
const deviceRows = new Map();
function deviceRow(name) {
  let tr = deviceRows.get(name);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.device = name;
    const link = document.createElement("a");
    link.href = `/?device=${encodeURIComponent(name)}`;
    link.textContent = name;
    for (let i = 0; i < 5; i++) tr.appendChild(document.createElement("td"));
    tr.cells[0].appendChild(link);
    deviceRows.set(name, tr);
  }
  return tr;
}

// A page of the devices at a time, in the order they came (a list that does not move under
// the pointer), so a thousand of them draw fifty rows; a filter by name once there are more
// than a page.
const DEVICES_PAGE = 50;
let devicesOffset = 0;
async function renderDevices() {
  try {
    const filter = $("device-filter").value.trim();
    const query = `offset=${devicesOffset}&limit=${DEVICES_PAGE}&match=${encodeURIComponent(filter)}`;
    const res = await fetch(`/api/fleet?${query}`);
    if (!res.ok) return;
    const fleet = await res.json();
    const list = fleet.devices;
    $("devices-panel").hidden = fleet.total < 2;
    $("device-filter").hidden = fleet.total <= DEVICES_PAGE && !filter;
    const paged = fleet.matching > DEVICES_PAGE;
    // The range whenever there is more than a page in all (or a filter); the buttons when
    // what matches is more than a page.
    $("devices-pager").hidden = fleet.total <= DEVICES_PAGE && !filter;
    $("devices-prev").hidden = $("devices-next").hidden = !paged;
    if (fleet.offset >= fleet.matching && fleet.offset > 0) { devicesOffset = 0; return renderDevices(); }
    $("devices-range").textContent = fleet.matching
      ? `${fleet.offset + 1}–${fleet.offset + list.length} of ${fleet.matching}${filter ? ` matching (${fleet.total} in all)` : ""}`
      : `none of ${fleet.total} matches`;
    $("devices-prev").disabled = fleet.offset === 0;
    $("devices-next").disabled = fleet.offset + list.length >= fleet.matching;
    const refused = $("devices-refused");
    refused.hidden = !fleet.refused;
    refused.textContent = `${fleet.refused} device${fleet.refused === 1 ? "" : "s"} refused: this daemon holds ${fleet.max_devices} at most (--max-devices)`;
    const current = DEVICE || fleet.first;
    const body = $("devices").tBodies[0];
    const rowsNow = list.map((d) => {
      const tr = deviceRow(d.name);
      tr.className = (d.name === current ? "current" : "") + (d.anomalies_last_minute > 0 ? " alerting" : "");
      const [, state, rate, counts, spark] = tr.cells;
      state.textContent = d.connected ? "●" : "○";
      rate.textContent = Math.round(d.rate);
      counts.textContent = `${d.anomalies_last_minute} / ${d.anomalies_last_hour}`;
      spark.replaceChildren(sparkline(d.spark));
      tr.title = `${d.name}: ${d.link_error || `${d.board || "no hello yet"} on ${d.port}`}`;
      return tr;
    });
    // Rows move only when the order changes; rows of devices gone go.
    rowsNow.forEach((tr, i) => { if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null); });
    while (body.rows.length > rowsNow.length) body.rows[body.rows.length - 1].remove();
    const names = new Set(list.map((d) => d.name));
    for (const name of deviceRows.keys()) if (!names.has(name)) deviceRows.delete(name);
    if (fleet.total > 1) { pageName = `${current} · zscope`; deviceShown = current; renderCount(); }
  } catch (e) { /* the daemon is away: the WebSocket says so */ }
}
$("devices-prev").onclick = () => { devicesOffset = Math.max(0, devicesOffset - DEVICES_PAGE); renderDevices(); };
$("devices-next").onclick = () => { devicesOffset += DEVICES_PAGE; renderDevices(); };
$("device-filter").oninput = () => { devicesOffset = 0; renderDevices(); };
renderDevices();
setInterval(renderDevices, 2000);

// ---- live updates ----
function connect() {
  const query = DEVICE ? `?device=${encodeURIComponent(DEVICE)}` : "";
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${query}`);
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "snapshot") {
      // A (re)connection: redraw from the snapshot; its samples already alerted stay as they
      // are (dismissed ones stay dismissed).
      cols = [[], [], [], [], [], [], []];
      playout = []; waiting = 0;
      quietAlerts = true;
      drawAll(m.points, false);
      quietAlerts = false;
      renderStatus(m.status); renderConfig(m.config);
      dirty = true;
      if (AT > 0 && !atShown) { atShown = true; showMoment(AT); }
    } else if (m.type === "points") {
      if (size(m.points)) schedule(m.points);
      pointsReceived += size(m.points); batchesReceived += 1;
    } else if (m.type === "status") {
      renderStatus(m);
    } else if (m.type === "config") {
      renderConfig(m);
    } else if (m.type === "lagged") {
      $("chart-note").textContent = `this page fell behind; skipped ${m.skipped_updates} updates`;
    }
  };
  ws.onclose = () => {
    $("connection").textContent = "daemon unreachable"; $("connection").className = "pill off";
    setTimeout(connect, 1000);
  };
}
connect();
