/* The operator console's figures (service tokens): every job's counters, changes per minute, the
   platforms, the run queue, stuck jobs and the projection's lag, from GET /api/v1/admin/overview.
   Live: asked again when the change feed (app.js's stream) says a job changed, and every few seconds
   for the ages that grow by themselves (a queued job's wait, an idle job's). It reads counters and
   small tables, never the log. The job list and its actions are operator_jobs.js. */
"use strict";

const operator = {
  overview: null, loadedAt: 0, minutes: new Map(), timer: null,
  AGES_MS: 5000, WINDOW_MINUTES: 30,
};
window.vjmOperator = operator;

async function refreshOverview() {
  if (!state.token || !isService()) return;
  try {
    const overview = await api("/admin/overview?days=14");
    operator.overview = overview;
    renderOperatorCounters(overview.stats);
    renderPlatforms(overview.stats.by_platform);
    renderQueue(overview);
    renderStuck(overview);
    renderLag(overview.projector);
    $("op-first-run").hidden = overview.stats.total_jobs > 0;
    for (const origin of document.querySelectorAll(".origin")) origin.textContent = location.origin;
  } catch (error) { if (error.message !== "401") $("op-error").textContent = error.message; }
}
const scheduleOverview = ui.debounce(refreshOverview, 120);

function renderOperatorCounters(stats) {
  const cells = STATUSES.map((s) => [s, stats[`${s}_jobs`]]).concat([["total", stats.total_jobs]]);
  $("op-counters").replaceChildren(...cells.map(([name, n]) => el("div", { class: "counter " + name, "data-status": name },
    el("div", { class: "n" }, String(n)), el("div", { class: "label" }, name))));
}

function renderPlatforms(platforms) {
  $("op-platforms").replaceChildren(...platforms.map((p) => el("tr", { "data-platform": p.platform_target },
    el("th", { scope: "row" }, p.platform_target),
    ...[...STATUSES, "total"].map((s) => el("td", { class: "num" }, String(p[`${s}_jobs`]))))));
  ui.showTable($("op-platforms"));
}

function renderQueue(overview) {
  $("op-queue").replaceChildren(...overview.queue.map((q) => el("tr", {},
    el("td", {}, q.platform_target), el("td", { class: "num" }, String(q.priority)),
    el("td", { class: "num" }, String(q.queued)), el("td", { class: "num" }, String(q.claimable)),
    el("td", {}, q.claimable ? ui.duration(q.oldest_claimable_seconds) : "–"))));
  $("op-queue-empty").hidden = overview.queue.length > 0; ui.showTable($("op-queue"));
  $("op-oldest").textContent = overview.oldest_queued_seconds == null ? "" :
    `oldest waits ${ui.duration(overview.oldest_queued_seconds)}`;
}

function renderStuck(overview) {
  $("op-stuck").replaceChildren(...overview.stuck.map((s) => el("tr", { "data-job-id": s.job_id },
    el("td", { class: "mono", title: s.job_id }, ui.short(s.job_id)), el("td", { class: "num" }, String(s.attempt)),
    el("td", { class: "num" }, String(s.attempts_left)), el("td", {}, ui.duration(s.idle_seconds)),
    el("td", {}, ui.duration(s.timeout_seconds)))));
  $("op-stuck-empty").hidden = overview.stuck.length > 0; ui.showTable($("op-stuck"));
  $("op-stuck-title").textContent = `${overview.stuck.length} · time-out ${ui.duration(overview.stuck_timeout_seconds)}`;
}

function renderLag(projector) {
  const facts = [["status", projector.status], ["events behind", projector.events_behind],
                 ["seconds behind", projector.seconds_behind], ["held events", projector.held_events]];
  const horizon = projector.horizon;
  if (horizon) facts.push(["horizon held by", horizon.blocking_pid != null ? `pid ${horizon.blocking_pid} (${horizon.blocking_state || "?"}, ` +
    `open ${ui.duration(horizon.blocking_xact_seconds)})` : "an open transaction"], ["held for", ui.duration(horizon.held_seconds)]);
  if (projector.detail) facts.push(["detail", projector.detail]);
  $("op-lag").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v ?? "–"))]));
  $("op-lag-status").textContent = projector.status;
}

/* Changes per minute, by the status they led to, over the last half hour of the change feed. */
function countChange(change) {
  if (!change.changed_at) return;
  const minute = Math.floor(Date.parse(change.changed_at) / 60000);
  if (minute < Math.floor(Date.now() / 60000) - operator.WINDOW_MINUTES) return;
  const bucket = operator.minutes.get(minute) || {};
  bucket[change.status] = (bucket[change.status] || 0) + 1;
  operator.minutes.set(minute, bucket);
}
function renderThroughput() {
  const NS = "http://www.w3.org/2000/svg", W = Math.max(300, $("op-throughput").clientWidth || 400), H = 120;
  const now = Math.floor(Date.now() / 60000), n = operator.WINDOW_MINUTES, slot = (W - 8) / n;
  const totals = [...Array(n).keys()].map((i) => operator.minutes.get(now - n + 1 + i) || {});
  const sum = (b) => Object.values(b).reduce((a, c) => a + c, 0), max = Math.max(1, ...totals.map(sum));
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("aria-hidden", "true");
  totals.forEach((bucket, i) => {
    let y = H - 4;
    for (const status of STATUSES) {
      const h = ((bucket[status] || 0) / max) * (H - 12);
      if (!h) continue;
      const rect = document.createElementNS(NS, "rect");
      for (const [k, v] of Object.entries({ x: 4 + i * slot, y: y - h, width: Math.max(2, slot - 2), height: h, class: "fill-" + status }))
        rect.setAttribute(k, v);
      svg.append(rect); y -= h;
    }
  });
  $("op-throughput").replaceChildren(svg);
  const last = sum(operator.minutes.get(now) || {}), per = STATUSES.map((s) => `${(operator.minutes.get(now) || {})[s] || 0} ${s}`);
  $("op-rate").textContent = `${last} this minute`;
  $("op-throughput").setAttribute("aria-label", `job changes this minute: ${per.join(", ")}`);
}
const scheduleThroughput = ui.debounce(async () => renderThroughput(), 250);

state.onChange.push((change) => {
  if (!isService()) return;
  countChange(change); scheduleThroughput();
  const old = change.changed_at && Date.parse(change.changed_at) < operator.loadedAt - 5000;
  if (!old) scheduleOverview();  // history replayed at connect is in the figures already
});
state.onSignIn.push(() => {
  clearInterval(operator.timer);
  operator.minutes.clear(); operator.loadedAt = Date.now();
  if (!isService()) return;
  refreshOverview(); renderThroughput();
  operator.timer = setInterval(() => { if (state.token && isService()) { refreshOverview(); renderThroughput(); } },
                               operator.AGES_MS);
});
