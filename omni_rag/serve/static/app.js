// omni-rag search page: the URL is the state (?q=&streams=&fusion=&k=&view=), results are cards
// that show and play each hit from its start_s to its end_s. No dependencies, no network but
// this server.
"use strict";

const STREAMS = ["audio", "video", "text", "image"];
const KEY_STORE = "omni-rag-api-key";
const $ = (id) => document.getElementById(id);
let apiKey = sessionStorage.getItem(KEY_STORE);
let queryFile = null;
let collection = null;

class UiError extends Error {}

// -- talking to the server ---------------------------------------------------------------------

function rememberKey(key) {
  apiKey = key;
  sessionStorage.setItem(KEY_STORE, key);
  // <video>, <audio> and <img> cannot send headers: they carry the key as a same-site cookie.
  document.cookie = `omni_rag_api_key=${encodeURIComponent(key)}; path=/; SameSite=Strict`;
}

function askKey(wrong) {
  const key = window.prompt(wrong ? "That API key was refused. API key:" : "This server needs an API key:");
  if (!key) return false;
  rememberKey(key.trim());
  return true;
}

async function api(path, options = {}, asked = false) {
  const headers = { ...(options.headers || {}) };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    throw new UiError(`The server is unreachable (${error.message}). Is \`omni-rag serve\` still running?`);
  }
  if (response.status === 401) {
    if (askKey(asked || Boolean(apiKey))) return api(path, options, true);
    throw new UiError("This server needs an API key; reload the page to enter it.");
  }
  let body = null;
  try { body = await response.json(); } catch (error) { body = null; }
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
    throw new UiError(`${response.status === 413 ? "Upload too large" : "The search failed"}: ${detail}`);
  }
  return body;
}

// -- the URL is the state ----------------------------------------------------------------------

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const streams = (params.get("streams") || "").split(",").filter((s) => STREAMS.includes(s));
  return {
    q: params.get("q") || "",
    streams: streams.length ? streams : STREAMS.slice(),
    fusion: ["mean", "rrf", "dbsf", "max"].includes(params.get("fusion")) ? params.get("fusion") : "mean",
    k: Math.min(1000, Math.max(1, parseInt(params.get("k") || "10", 10) || 10)),
    grouped: params.get("view") === "grouped",
  };
}

function readForm() {
  const streams = [...document.querySelectorAll("#streams input:checked")].map((box) => box.value);
  return { q: $("q").value.trim(), streams, fusion: $("fusion").value, k: parseInt($("k").value, 10) || 10, grouped: $("grouped").checked };
}

function showState(state) {
  $("q").value = state.q;
  document.querySelectorAll("#streams input").forEach((box) => { box.checked = state.streams.includes(box.value); });
  $("fusion").value = state.fusion;
  $("k").value = state.k;
  $("grouped").checked = state.grouped;
}

function stateUrl(state) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  if (state.streams.length !== STREAMS.length) params.set("streams", state.streams.join(","));
  if (state.fusion !== "mean") params.set("fusion", state.fusion);
  if (state.k !== 10) params.set("k", String(state.k));
  if (state.grouped) params.set("view", "grouped");
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

// -- searching ---------------------------------------------------------------------------------

function message(text, isError) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "message error" : "message";
  box.hidden = !text;
}

function searchRequest(state) {
  if (!queryFile) {
    return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: state.q, k: state.k, fusion: state.fusion, streams: state.streams }) };
  }
  const form = new FormData();
  if (state.q) form.append("text", state.q);
  form.append("k", String(state.k));
  form.append("fusion", state.fusion);
  form.append("streams", state.streams.join(","));
  form.append(fileKind(), queryFile, queryFile.name);
  return { method: "POST", body: form };
}

function fileKind() {
  const chosen = $("file-kind").value;
  if (chosen !== "auto") return chosen;
  const type = queryFile.type || "";
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("video/")) return "video";
  return "audio";
}

async function runSearch(state) {
  if (!state.q && !queryFile) { $("results").replaceChildren(); message(""); return; }
  if (!state.streams.length) { message("Choose at least one stream.", true); return; }
  message("Searching…");
  $("results").setAttribute("aria-busy", "true");
  try {
    const body = await api("/api/search", searchRequest(state));
    message(body.hits.length ? "" : `No results${collection && collection.points === 0 ? ": the collection is empty" : ""} for this query over ${state.streams.join(", ")}.`);
    render(body.hits, state.grouped);
  } catch (error) {
    $("results").replaceChildren();
    message(error.message, true);
  } finally {
    $("results").removeAttribute("aria-busy");
  }
}

// -- cards -------------------------------------------------------------------------------------

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function clock(seconds) {
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? h + ":" : ""}${mm}:${String(s).padStart(2, "0")}`;
}

function span(hit) {
  if (hit.start_s == null && hit.end_s == null) return "";
  return `${clock(hit.start_s || 0)}-${hit.end_s == null ? "end" : clock(hit.end_s)}`;
}

function sourceName(hit) {
  return hit.source || (hit.metadata && (hit.metadata.path || hit.metadata.name)) || hit.id;
}

function baseName(path) {
  return String(path).split(/[\\/]/).filter(Boolean).pop() || String(path);
}

function bars(hit) {
  const rows = [];
  for (const stream of STREAMS) {
    if (!(stream in hit.stream_scores)) continue;
    const value = hit.stream_scores[stream];
    const fill = el("i");
    fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
    rows.push(el("span", { textContent: stream }), el("span", { className: "bar" }, [fill]), el("span", { textContent: value.toFixed(3) }));
  }
  return el("div", { className: "bars" }, rows);
}

// A player that starts at start_s and stops at end_s, whatever the user does with its controls.
function player(tag, hit) {
  const start = hit.start_s || 0;
  const end = hit.end_s;
  const media = el(tag, { controls: true, preload: "none", className: "player" });
  media.src = `${hit.media_url}#t=${start}${end == null ? "" : "," + end}`;
  if (hit.poster_url) media.poster = hit.poster_url;
  media.dataset.start = String(start);
  if (end != null) media.dataset.end = String(end);
  const toStart = () => { if (media.currentTime < start - 0.25 || (end != null && media.currentTime >= end - 0.05)) media.currentTime = start; };
  media.addEventListener("loadedmetadata", toStart);
  media.addEventListener("play", toStart);
  media.addEventListener("timeupdate", () => { if (end != null && media.currentTime >= end) media.pause(); });
  return media;
}

function body(hit) {
  if (hit.kind === "video" && hit.media_url) return player("video", hit);
  if (hit.kind === "audio" && hit.media_url) return player("audio", hit);
  if (hit.kind === "image" && hit.media_url) return el("img", { src: hit.media_url, alt: sourceName(hit), loading: "lazy" });
  if (hit.text != null) return el("div", { className: "text", textContent: hit.text });
  return el("div", { className: "text", textContent: "(the source file is not available on this server)" });
}

function card(hit) {
  const media = body(hit);
  const head = el("div", { className: "head" }, [
    el("span", { className: "rank", textContent: `#${hit.rank}` }),
    el("span", { className: "score", textContent: hit.score.toFixed(4), title: "fused score" }),
    el("span", { className: "source", textContent: baseName(sourceName(hit)), title: sourceName(hit) }),
    el("span", { className: "span", textContent: span(hit) }),
  ]);
  const node = el("article", { className: `card ${hit.kind}`, id: `hit-${hit.rank}` }, [head, bars(hit), media]);
  node.dataset.id = hit.id;
  if (media.tagName === "VIDEO" || media.tagName === "AUDIO") {
    node.append(el("button", { type: "button", className: "play", textContent: `▶ play ${span(hit) || "from the start"}`, onclick: () => media.play() }));
  }
  return node;
}

function groups(hits) {
  const byName = new Map();
  for (const hit of hits) {
    const name = sourceName(hit);
    if (!byName.has(name)) byName.set(name, []);
    byName.get(name).push(hit);
  }
  return byName;
}

function timeline(hits) {
  const length = Math.max(...hits.map((h) => h.end_s || 0), 1);
  const line = el("div", { className: "timeline", title: "the file's matching segments" });
  for (const hit of hits) {
    if (hit.start_s == null) continue;
    const seg = el("span", { className: "seg", textContent: `#${hit.rank} ${span(hit)}`, title: `${span(hit)} · score ${hit.score.toFixed(4)}`, onclick: () => document.getElementById(`hit-${hit.rank}`).scrollIntoView({ behavior: "smooth" }) });
    seg.style.left = `${(hit.start_s / length) * 100}%`;
    seg.style.opacity = String(Math.max(0.35, 1 - (hit.rank - 1) * 0.08));
    seg.style.width = `${(((hit.end_s || length) - hit.start_s) / length) * 100}%`;
    line.append(seg);
  }
  return line;
}

function render(hits, grouped) {
  const results = $("results");
  results.className = grouped ? "grouped" : "";
  if (!grouped) { results.replaceChildren(...hits.map(card)); return; }
  const rows = [];
  for (const [name, members] of groups(hits)) {
    const title = el("h3", { textContent: `${baseName(name)} ` }, [el("small", { textContent: `${name} · ${members.length} hit${members.length > 1 ? "s" : ""}` })]);
    const row = el("section", { className: "group" }, [title]);
    if (members.some((h) => h.start_s != null)) row.append(timeline(members));
    row.append(el("div", { className: "cards" }, members.map(card)));
    rows.push(row);
  }
  results.replaceChildren(...rows);
}

// -- wiring ------------------------------------------------------------------------------------

function setFile(file) {
  queryFile = file;
  $("drop").classList.toggle("has-file", Boolean(file));
  $("drop-label").textContent = file ? `Query file: ${file.name}` : "Drop a file here or";
  $("clear-file").hidden = !file;
}

function wire() {
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const state = readForm();
    const url = stateUrl(state);
    if (url !== window.location.pathname + window.location.search) history.pushState(null, "", url);
    runSearch(state);
  });
  $("file").addEventListener("change", () => setFile($("file").files[0] || null));
  $("clear-file").addEventListener("click", () => { $("file").value = ""; setFile(null); });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) setFile(event.dataTransfer.files[0]);
  });
  window.addEventListener("popstate", () => { const state = readUrl(); showState(state); runSearch(state); });
}

async function start() {
  wire();
  const state = readUrl();
  showState(state);
  try {
    collection = await api("/api/health");
    $("status").textContent = `collection ${collection.collection} · ${collection.points} points · ${collection.model}`;
    if (collection.points === 0) message(`The collection ${collection.collection} is empty: index files into it with \`omni-rag index PATH -c ${collection.collection}\`.`, true);
  } catch (error) {
    $("status").textContent = "not connected";
    message(error.message, true);
    return;
  }
  if (state.q) runSearch(state);
}

start();
