/* vjm dashboard: vanilla JS, no build step. Reads the HTTP API with a bearer token and follows
   GET /api/v1/events/stream with fetch() streaming, because EventSource cannot send an
   Authorization header. Everything shown is what the API returns for that token (RLS decides). */
"use strict";

const API = "/api/v1";
/* One time convention with the CLI: ISO 8601, UTC, the zone named ("2026-12-06T03:07:19Z"). */
const iso = (t) => new Date(t).toISOString().slice(0, 19) + "Z";
const STATUSES = ["queued", "processing", "completed", "failed", "cancelled"];
const state = { token: null, claims: null, jobs: new Map(), filters: {}, lastSeq: null, connected: false,
                loadedAt: 0, selected: null, stream: null, pending: new Map(), statsTimer: null,
                onSignIn: [], onChange: [] };  // the consoles' hooks: signed in, a change arrived
window.vjm = state; // for tests and the curious: the dashboard's live state

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k === "class" ? (node.className = v) : node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
};
/* The filter forms' choices (select[data-choices]), in one place: "any", then the statuses, platforms or presets. */
const CHOICES = { status: STATUSES, platform_target: ["tiktok", "instagram", "youtube_shorts"],
                  quality_preset: ["draft", "standard", "pro", "ultra"] };
for (const select of document.querySelectorAll("select[data-choices]"))
  select.append(el("option", { value: "" }, "any"), ...CHOICES[select.dataset.choices].map((c) => el("option", {}, c)));

function decodeClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch { return null; }
}
const isService = () => state.claims && state.claims.role === "service_role";

async function api(path) {
  const response = await fetch(API + path, { headers: { Authorization: "Bearer " + state.token } });
  if (response.status === 401) { signOut("Your token was refused: " + (await problemText(response))); throw new Error("401"); }
  if (!response.ok) { const error = new Error(await problemText(response)); error.status = response.status; throw error; }
  return response.json();
}
async function problemText(response) {
  try { const p = await response.json(); return p.detail || p.title || response.statusText; }
  catch { return response.statusText; }
}

/* ---------- sign in ---------- */
function signIn(token) {
  token = token.trim();
  const claims = decodeClaims(token);
  if (!claims) { $("signin-error").textContent = "That is not a JWT."; return; }
  state.token = token; state.claims = claims;
  sessionStorage.setItem("vjm-token", token);
  $("signin").hidden = true; $("app").hidden = false; $("signout").hidden = false;
  $("who").textContent = isService() ? "service_role" : "signed in as " + claims.sub;
  $("scope-label").hidden = isService(); $("user-label").hidden = !isService();
  state.loadedAt = Date.now();
  for (const hook of state.onSignIn) hook();  // they fill the forms from the URL first
  readFilters();
  if (!isService()) reload();  // a service gets the operator console (operator.js)
  connect();
}
function signOut(message) {
  sessionStorage.removeItem("vjm-token");
  if (state.stream) state.stream.abort();
  state.token = null; state.jobs.clear();
  $("app").hidden = true; $("signin").hidden = false; $("signout").hidden = true; $("who").textContent = "";
  $("tabs").hidden = true;
  $("signin-error").textContent = message || "";
  setLive(false);
}

/* ---------- filters and loading ---------- */
function readFilters() {
  const data = new FormData($("filters"));
  state.filters = Object.fromEntries([...data.entries()].filter(([, v]) => String(v).trim() !== ""));
  if (!isService() && state.view === "jobs") ui.writeUrl("jobs", state.filters);
}
function listPath() {
  const f = state.filters, q = new URLSearchParams({ limit: "100" });
  for (const key of ["status", "platform_target", "quality_preset"]) if (f[key]) q.set(key, f[key]);
  if (f.team_id) return `/teams/${encodeURIComponent(f.team_id)}/jobs?${q}`;
  if (isService()) { if (f.user_id) q.set("user_id", f.user_id); }
  else q.set("scope", f.scope || "visible");
  return `/user/jobs?${q}`;
}
function statsPath() {
  const f = state.filters;
  if (f.team_id) return `/teams/${encodeURIComponent(f.team_id)}/jobs/stats?days=14`;
  if (isService()) return f.user_id ? `/user/jobs/stats?days=14&user_id=${encodeURIComponent(f.user_id)}` : null;
  return `/user/jobs/stats?days=14&scope=${encodeURIComponent(f.scope || "visible")}`;  // as listPath: one scope
}
const loads = { list: ui.latest(), stats: ui.latest() };
async function reload() {
  $("error").textContent = "";
  state.loadedAt = Date.now();
  const ticket = loads.list.take();
  try {
    const page = await api(listPath());
    if (!loads.list.current(ticket)) return;
    state.jobs = new Map(page.items.map((job) => [job.job_id, job]));
    renderJobs();
    if (page.total > page.items.length) $("total").textContent += ` of ${page.total}`;
  } catch (error) { if (error.message !== "401") $("error").textContent = error.message; }
  refreshStats();
}
function matches(job) {
  const f = state.filters;
  if (f.status && job.status !== f.status) return false;
  if (f.platform_target && job.platform_target !== f.platform_target) return false;
  if (f.quality_preset && job.quality_preset !== f.quality_preset) return false;
  if (f.team_id && job.team_id !== f.team_id) return false;
  if (isService() && f.user_id && job.user_id !== f.user_id) return false;
  if (!isService() && f.scope === "own" && job.user_id !== state.claims.sub) return false;
  return true;
}

/* ---------- rendering ---------- */
function renderJobs() {
  const body = $("jobs"), rows = [...state.jobs.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
  body.replaceChildren(...rows.map(jobRow));
  $("empty").hidden = rows.length > 0;
  document.title = `vjm · ${rows.length} job(s)`;
  $("total").textContent = `${rows.length} shown`;
}
function jobRow(job) {
  const progress = el("td", {}, el("span", { class: "bar " + job.status }), `${Math.round(job.progress_percent)}%`);
  progress.firstChild.append(el("i", { style: `width:${Math.min(100, job.progress_percent)}%` }));
  const row = el("tr", { "data-job-id": job.job_id, class: job.job_id === state.selected ? "selected" : "" },
    el("td", { class: "mono", title: job.job_id }, "…" + job.job_id.slice(-8)),
    el("td", {}, job.original_filename), el("td", {}, job.user_id),
    el("td", {}, el("span", { class: "badge " + job.status }, job.status)),
    el("td", {}, job.platform_target), el("td", {}, job.quality_preset), el("td", {}, String(job.priority ?? 0)),
    progress, el("td", {}, `${job.attempt}/${job.max_attempts}`),
    el("td", { class: "mono" }, job.run_at ? iso(job.run_at) : ""), el("td", { class: "mono" }, iso(job.created_at)));
  row.addEventListener("click", () => showHistory(job.job_id));
  return row;
}
function renderCounters(stats) {
  const cells = STATUSES.map((s) => [s, stats ? stats[`${s}_jobs`] : "–"]).concat([["total", stats ? stats.total_jobs : "–"]]);
  $("counters").replaceChildren(...cells.map(([name, n]) =>
    el("div", { class: "counter " + name, "data-status": name }, el("div", { class: "n" }, String(n)), el("div", { class: "label" }, name))));
}
async function refreshStats() {
  const path = statsPath(), ticket = loads.stats.take();
  if (!path) { renderCounters(null); renderChart([]); return; }
  try {
    const stats = await api(path);
    if (loads.stats.current(ticket)) { renderCounters(stats); renderChart(stats.daily); }
  } catch (error) { if (error.message !== "401") $("error").textContent = error.message; }
}
function scheduleStats() { clearTimeout(state.statsTimer); state.statsTimer = setTimeout(refreshStats, 400); }

function renderChart(daily) {
  /* As wide as its panel, so that it fills it (text keeps its size: no stretching). */
  const NS = "http://www.w3.org/2000/svg", W = Math.max(320, $("chart").clientWidth || 640), H = 220,
        pad = { l: 36, r: 10, t: 14, b: 28 };
  const svgEl = (tag, attrs, text) => { const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text != null) n.textContent = text; return n; };
  const days = [], byDay = new Map(daily.map((d) => [d.day, d]));
  for (let i = 13; i >= 0; i--) { const d = new Date(Date.now() - i * 86400e3).toISOString().slice(0, 10); days.push(byDay.get(d) || { day: d, completed_jobs: 0, failed_jobs: 0 }); }
  const max = Math.max(1, ...days.map((d) => Math.max(d.completed_jobs, d.failed_jobs)));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true" });  // the figure is labelled
  const plotH = H - pad.t - pad.b, slot = (W - pad.l - pad.r) / days.length, bw = Math.max(3, slot / 2 - 3);
  for (const frac of max % 2 === 0 ? [0, 0.5, 1] : [0, 1]) {
    const y = pad.t + plotH * (1 - frac);
    svg.append(svgEl("line", { x1: pad.l, x2: W - pad.r, y1: y, y2: y, stroke: "#2a3541" }));
    svg.append(svgEl("text", { x: pad.l - 6, y: y + 4, "text-anchor": "end" }, String(Math.round(max * frac))));
  }
  days.forEach((d, i) => {
    const x = pad.l + i * slot + 2;
    for (const [value, color, dx, label] of [[d.completed_jobs, "#66bb6a", 0, "completed"], [d.failed_jobs, "#ef5350", bw + 1, "failed"]]) {
      const h = plotH * value / max;
      const bar = svgEl("rect", { x: x + dx, y: pad.t + plotH - h, width: bw, height: Math.max(h, value ? 1 : 0), fill: color, rx: 2 });
      bar.append(svgEl("title", {}, `${d.day}: ${value} ${label}`));
      svg.append(bar);
    }
    if (i % 2 === 1 || days.length <= 7) svg.append(svgEl("text", { x: x + bw, y: H - 8, "text-anchor": "middle" }, d.day.slice(5)));
  });
  svg.append(svgEl("rect", { x: W - 170, y: 2, width: 10, height: 10, fill: "#66bb6a" }), svgEl("text", { x: W - 156, y: 11 }, "completed"));
  svg.append(svgEl("rect", { x: W - 86, y: 2, width: 10, height: 10, fill: "#ef5350" }), svgEl("text", { x: W - 72, y: 11 }, "failed"));
  $("chart").replaceChildren(svg);
}

/* What an event says beyond its states: a failure's text, a reason, the outputs, progress. */
function eventDetail(e) {
  const d = e.data || {}, lines = [];
  if (d.error) lines.push(`error: ${d.error}`);
  if (d.reason) lines.push(`reason: ${d.reason}`);
  if (d.output_paths && d.output_paths.length) lines.push(`outputs: ${d.output_paths.join(", ")}`);
  if (e.type === "progress" && d.percent != null) lines.push(`${d.percent}%` + (d.clips_done != null ? `, ${d.clips_done} clip(s)` : ""));
  return lines;
}

async function showHistory(jobId) {
  state.selected = jobId;
  for (const row of $("jobs").children) row.classList.toggle("selected", row.dataset.jobId === jobId);
  $("history-title").textContent = "…" + jobId.slice(-8);
  try {
    const history = await api(`/jobs/${jobId}/events`);
    $("history").replaceChildren(...history.events.map((e) => el("li", { class: e.to_state },
      el("div", {}, el("strong", {}, e.type), ` ${e.from_state || "–"} → ${e.to_state}`, e.attempt ? ` · attempt ${e.attempt}` : ""),
      el("div", { class: "meta" }, `#${e.position} v${e.version} · ${iso(e.occurred_at)} · by ${e.actor}`),
      ...eventDetail(e).map((text) => el("div", { class: "detail" }, text)))));
  } catch (error) { if (error.message !== "401") $("history").replaceChildren(el("li", {}, error.message)); }
}

/* ---------- live updates: SSE over fetch() ---------- */
function setLive(on) { state.connected = on; $("live").className = "live " + (on ? "on" : "off"); $("live").textContent = on ? "live" : "offline"; }

async function connect() {
  let delay = 500;
  while (state.token) {
    const controller = new AbortController(); state.stream = controller;
    const headers = { Authorization: "Bearer " + state.token, Accept: "text/event-stream" };
    if (state.lastSeq != null) headers["Last-Event-ID"] = String(state.lastSeq);
    try {
      const response = await fetch(API + "/events/stream", { headers, signal: controller.signal, cache: "no-store" });
      if (response.status === 401) { signOut("Your token was refused by the live stream."); return; }
      if (!response.ok || !response.body) throw new Error("stream answered " + response.status);
      setLive(true); delay = 500;
      await readEvents(response.body.getReader());
    } catch (error) { if (controller.signal.aborted) return; }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, delay)); // reconnect with Last-Event-ID: no gap
    delay = Math.min(delay * 2, 10000);
  }
}
async function readEvents(reader) {
  const decoder = new TextDecoder(); let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) { dispatch(buffer.slice(0, end)); buffer = buffer.slice(end + 2); }
  }
}
function dispatch(block) {
  const event = { type: "message", data: [], id: null };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":"), field = i < 0 ? line : line.slice(0, i), value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "data") event.data.push(value); else if (field === "event") event.type = value; else if (field === "id") event.id = value;
  }
  if (event.id != null) state.lastSeq = Number(event.id);
  if (event.type !== "job_change" || !event.data.length) return;
  const change = JSON.parse(event.data.join("\n"));
  for (const hook of state.onChange) hook(change);
  if (!isService()) onChange(change);
}
function onChange(change) {
  const known = state.jobs.get(change.job_id);
  if (known && known.version >= change.version) return;
  // The stream starts at the beginning of the change feed: older history is already in the table.
  if (!known && change.changed_at && Date.parse(change.changed_at) < state.loadedAt - 5000) return;
  if (state.pending.has(change.job_id)) return; // one refresh per job in flight
  state.pending.set(change.job_id, setTimeout(() => refreshJob(change), 50));
}
async function refreshJob(change) {
  try {
    const job = await api(`/jobs/${change.job_id}`);
    const fresh = !state.jobs.has(job.job_id);
    if (matches(job)) state.jobs.set(job.job_id, job); else state.jobs.delete(job.job_id);
    renderJobs();
    if (fresh) { const row = document.querySelector(`tr[data-job-id="${job.job_id}"]`); if (row) row.classList.add("fresh"); }
    if (state.selected === job.job_id) showHistory(job.job_id);
  } catch (error) {
    if (error.status === 404) { state.jobs.delete(change.job_id); renderJobs(); }
  } finally {
    state.pending.delete(change.job_id);
    scheduleStats();
  }
}

/* ---------- wiring ---------- */
$("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value); });
$("signout").addEventListener("click", () => signOut());
$("filters").addEventListener("submit", (e) => { e.preventDefault(); readFilters(); reload(); });
$("filters").addEventListener("change", (e) => { if (e.target.tagName === "SELECT") { readFilters(); reload(); } });
renderCounters(null);
/* Called by views.js once every script is loaded: sign in with the token of the link or of this tab. */
function start() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) history.replaceState(null, "", location.pathname + location.search); // keep the token out of the address bar
  const saved = fromHash || sessionStorage.getItem("vjm-token");
  if (saved) signIn(saved);
}
