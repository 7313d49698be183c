// The Annals event browser. Every piece of stored data reaches the page
// through textContent (never as markup), so an event's payload is shown,
// never run. URLs are relative to the page, so an API nested under a
// prefix works as it is.
"use strict";

const PAGE = 50;
const TAIL_KEPT = 200;
const HANDLERS_EVERY_MS = 2000;

const $ = (id) => document.getElementById(id);

// An element with text content and attributes; children appended.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function showProblem(id, message) {
  const node = $(id);
  node.textContent = message || "";
  node.hidden = !message;
}

// GET a JSON document; a problem+json answer becomes an Error saying it.
async function getJson(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const what = body && (body.detail || body.title);
    throw new Error(`${response.status} ${what || response.statusText}`);
  }
  return body;
}

function shortTime(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? String(iso) : at.toLocaleString();
}

function pretty(data) {
  try {
    return JSON.stringify(data, null, 2);
  } catch (_) {
    return String(data);
  }
}

// One event with its metadata; `withStream` names its stream too (tail).
function eventCard(event, withStream) {
  const meta = event.metadata || {};
  const rows = [
    ["position", event.position],
    ["stream version", event.stream_version],
    ["recorded at", event.recorded_at],
    ["event id", event.event_id],
    ["schema version", event.event_version],
    ["correlation id", meta.correlation_id || "—"],
    ["causation id", meta.causation_id || "—"],
  ];
  if (meta.custom && Object.keys(meta.custom).length > 0) {
    rows.push(["custom", pretty(meta.custom)]);
  }
  const dl = el("dl");
  for (const [name, value] of rows) {
    dl.append(el("dt", { text: name }), el("dd", { text: value, "data-field": name }));
  }
  const head = el(
    "div",
    { class: "head" },
    el("span", { class: "type", text: event.type }),
    withStream ? el("span", { class: "stream", text: event.stream_id }) : null,
    el("span", { class: "muted", text: `v${event.stream_version} · #${event.position} · ${shortTime(event.recorded_at)}` }),
  );
  return el(
    "div",
    {
      class: "event",
      "data-position": event.position,
      "data-type": event.type,
      "data-stream-id": event.stream_id,
    },
    head,
    dl,
    el("pre", { class: "data", text: pretty(event.data) }),
  );
}

// ---- Streams ----------------------------------------------------------

const streams = { after: null, complete: false, category: "", selected: null };

function streamItem(streamId, version, lastPosition, title) {
  const item = el(
    "li",
    { "data-stream-id": streamId, title },
    el("span", { class: "id", text: streamId }),
    el("span", { class: "meta", text: `v${version} · #${lastPosition}` }),
  );
  if (streamId === streams.selected) item.classList.add("selected");
  item.addEventListener("click", () => openStream(streamId));
  return item;
}

function listedItem(streamId) {
  for (const item of $("streams").children) {
    if (item.dataset.streamId === streamId) return item;
  }
  return null;
}

async function loadStreams(reset) {
  if (reset) {
    streams.after = null;
    streams.complete = false;
    $("streams").replaceChildren();
  }
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (streams.category) query.set("category", streams.category);
  if (streams.after) query.set("after", streams.after);
  try {
    const page = await getJson(`streams?${query}`);
    showProblem("streams-problem", null);
    for (const s of page.streams) {
      if (listedItem(s.stream_id)) continue; // added by the tail meanwhile
      const title = `created ${shortTime(s.created_at)}, updated ${shortTime(s.updated_at)}`;
      $("streams").append(streamItem(s.stream_id, s.version, s.last_position, title));
    }
    streams.after = page.next;
    streams.complete = !page.next;
    $("streams-more").hidden = !page.next;
    $("streams-empty").hidden = $("streams").children.length > 0;
  } catch (error) {
    showProblem("streams-problem", `Cannot list the streams: ${error.message}`);
  }
}

// A tailed event moves its stream's version on in the list, or adds the
// stream where it sorts when the list holds every stream of the filter.
function streamMoved(event) {
  const item = listedItem(event.stream_id);
  const meta = `v${event.stream_version} · #${event.position}`;
  if (item) {
    item.querySelector(".meta").textContent = meta;
    return;
  }
  const inFilter = !streams.category || event.stream_id.startsWith(`${streams.category}-`);
  if (!streams.complete || !inFilter) return;
  const added = streamItem(event.stream_id, event.stream_version, event.position, `created ${shortTime(event.recorded_at)}`);
  // Byte-wise order of UTF-8 ids is code point order; compare by code points.
  const before = Array.from($("streams").children).find(
    (other) => compareIds(other.dataset.streamId, event.stream_id) > 0,
  );
  $("streams").insertBefore(added, before || null);
  $("streams-empty").hidden = true;
}

function compareIds(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}

// ---- A stream's events --------------------------------------------------

const opened = { stream: null, next: null };

async function openStream(streamId) {
  streams.selected = streamId;
  for (const item of $("streams").children) {
    item.classList.toggle("selected", item.dataset.streamId === streamId);
  }
  opened.stream = streamId;
  opened.next = 1;
  $("events").replaceChildren();
  $("events-title").textContent = streamId;
  $("events-title").classList.remove("muted");
  $("events-version").textContent = "";
  await loadEvents();
}

async function loadEvents() {
  const streamId = opened.stream;
  if (!streamId || !opened.next) return;
  const query = new URLSearchParams({ from: String(opened.next), limit: String(PAGE) });
  try {
    const page = await getJson(`streams/${encodeURIComponent(streamId)}/events?${query}`);
    if (opened.stream !== streamId) return; // another stream was opened meanwhile
    showProblem("events-problem", null);
    for (const event of page.events) {
      $("events").append(eventCard({ ...event, stream_id: page.stream_id }, false));
    }
    opened.next = page.next;
    $("events-version").textContent = `version ${page.version}`;
    $("events-more").hidden = !page.next;
  } catch (error) {
    if (opened.stream === streamId) {
      showProblem("events-problem", `Cannot read ${streamId}: ${error.message}`);
    }
  }
}

// ---- The live tail over the WebSocket -----------------------------------

const tail = { socket: null, last: null, retry: 500, subscription: 0 };

function tailStatus(text, live) {
  const status = $("tail-status");
  status.textContent = text;
  status.classList.toggle("live", live === true);
  status.classList.toggle("down", live === false);
}

function subscribe(socket) {
  tail.subscription += 1;
  const message = {
    type: "subscribe",
    id: `tail-${tail.subscription}`,
    all: true,
    // From the last event shown, so a reconnect has no gap and no duplicate.
    after: tail.last === null ? "head" : tail.last,
  };
  socket.send(JSON.stringify(message));
}

function connectTail() {
  const url = new URL("ws", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  let socket;
  try {
    socket = new WebSocket(url);
  } catch (error) {
    tailStatus("unavailable", false);
    showProblem("tail-problem", `Cannot open ${url}: ${error.message}`);
    return;
  }
  tail.socket = socket;
  tailStatus("connecting", null);
  socket.addEventListener("open", () => subscribe(socket));
  socket.addEventListener("message", (message) => onTailMessage(socket, message));
  socket.addEventListener("close", () => {
    if (tail.socket !== socket) return;
    tail.socket = null;
    tailStatus(`disconnected, retrying in ${Math.round(tail.retry / 1000)} s`, false);
    setTimeout(connectTail, tail.retry);
    tail.retry = Math.min(tail.retry * 2, 15000);
  });
}

function onTailMessage(socket, message) {
  let frame;
  try {
    frame = JSON.parse(message.data);
  } catch (_) {
    return;
  }
  const current = `tail-${tail.subscription}`;
  if (frame.type === "subscribed" && frame.id === current) {
    if (tail.last === null && typeof frame.head === "number") tail.last = frame.head;
    tail.retry = 500;
    tailStatus("live", true);
    showProblem("tail-problem", null);
  } else if (frame.type === "event" && frame.subscription === current && frame.event) {
    const event = frame.event;
    if (tail.last !== null && event.position <= tail.last) return;
    tail.last = event.position;
    $("tail-empty").hidden = true;
    $("tail").prepend(eventCard(event, true));
    while ($("tail").children.length > TAIL_KEPT) $("tail").lastElementChild.remove();
    streamMoved(event);
    const shown = $("events").querySelector(`[data-position="${Number(event.position)}"]`);
    if (event.stream_id === opened.stream && opened.next === null && !shown) {
      // The opened stream was read to its end: show its new event too.
      $("events").append(eventCard(event, false));
      $("events-version").textContent = `version ${event.stream_version}`;
    }
  } else if (frame.type === "problem") {
    const problem = frame.problem || {};
    if (frame.id === current || frame.id === undefined || frame.id === null) {
      showProblem("tail-problem", `${problem.title || "Problem"}: ${problem.detail || ""}`);
      const lagged = typeof problem.type === "string" && problem.type.endsWith("lagged");
      if (frame.id === current && lagged && socket.readyState === WebSocket.OPEN) {
        // Too slow to keep up: the server closed the feed; resubscribe
        // from the last event shown.
        subscribe(socket);
      } else if (frame.id === current) {
        tailStatus("refused", false);
      }
    }
  }
}

// ---- Handlers -------------------------------------------------------------

async function loadHandlers() {
  try {
    const report = await getJson("handlers");
    showProblem("handlers-problem", null);
    const rows = report.handlers.map((h) => {
      const failing = h.state === "retrying" || h.state === "stopped";
      const error = h.last_error
        ? `#${h.last_error.position} at ${shortTime(h.last_error.at)}: ${h.last_error.message}`
        : "—";
      const row = el(
        "tr",
        { "data-handler": h.name, class: [failing ? "failing" : "", h.lag > 0 ? "lagging" : ""].join(" ").trim() },
        el("td", { text: h.name }),
        el("td", { class: "state", text: h.attempt ? `${h.state} (attempt ${h.attempt})` : h.state }),
        el("td", { class: "num", text: h.position, title: `checkpoint ${h.checkpoint}` }),
        el("td", { class: "num lag", text: h.lag }),
        el("td", { class: "num", text: h.handled }),
        el("td", { class: "num", text: h.skipped }),
        el("td", { class: "error", text: error }),
      );
      return row;
    });
    $("handlers").replaceChildren(...rows);
    $("handlers-table").hidden = rows.length === 0;
    $("handlers-empty").hidden = rows.length > 0;
    $("handlers-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    showProblem("handlers-problem", `Cannot read the handlers: ${error.message}`);
  }
}

// ---- Start ------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("where").textContent = new URL(".", document.baseURI).href;
  $("streams-filter").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    streams.category = $("streams-category").value.trim();
    loadStreams(true);
  });
  $("streams-refresh").addEventListener("click", () => loadStreams(true));
  $("streams-more").addEventListener("click", () => loadStreams(false));
  $("events-more").addEventListener("click", () => loadEvents());
  loadStreams(true);
  connectTail();
  loadHandlers();
  setInterval(loadHandlers, HANDLERS_EVERY_MS);
});
