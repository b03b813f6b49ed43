/* The operator console's job list (service tokens): every job across tenants, with the job lists'
   filters plus a user and a team, keyset pages of 50, and actions behind a confirmation: cancel,
   retry, and bulk retry of the failed jobs of the filter. GET /api/v1/admin/jobs, PATCH
   /api/v1/jobs/{id}, POST /api/v1/admin/jobs/retry-failed. Live: the page is read again when the
   change feed says a job changed. Enter on a row opens its timeline in the audit console. */
"use strict";

const opJobs = { pager: ui.pager(), loads: ui.latest(), filters: {}, items: [], lastBulk: null, known: new Set(), PAGE: 50 };
window.vjmOperatorJobs = opJobs;

function opListPath(extra = {}) {
  const q = new URLSearchParams({ limit: String(opJobs.PAGE), ...opJobs.filters, ...extra });
  if (opJobs.pager.cursor && !("limit" in extra)) q.set("cursor", opJobs.pager.cursor);
  return `/admin/jobs?${q}`;
}

async function loadOperatorJobs() {
  if (!state.token || !isService()) return;
  const ticket = opJobs.loads.take();
  try {
    const page = await api(opListPath());
    if (!opJobs.loads.current(ticket)) return;
    opJobs.items = page.items; opJobs.pager.next = page.next_cursor;
    renderOperatorJobs(page);
    $("op-error").textContent = "";
  } catch (error) { if (error.message !== "401") $("op-error").textContent = error.message; }
}
const scheduleOperatorJobs = ui.debounce(loadOperatorJobs, 120);

function renderOperatorJobs(page) {
  const body = $("op-jobs"), focused = document.activeElement?.closest?.("#op-jobs tr")?.dataset.jobId;
  body.replaceChildren(...page.items.map(operatorRow));
  ui.rovingRows(body);
  if (focused) { const row = body.querySelector(`tr[data-job-id="${focused}"]`); if (row) ui.focusRow(body, row); }
  $("op-empty").hidden = page.items.length > 0; ui.showTable(body);
  $("op-total").textContent = `${page.total} match`;
  ui.showPager("op", opJobs.pager, page.items.length);
}

function operatorRow(job) {
  const fresh = opJobs.known.size > 0 && !opJobs.known.has(job.job_id);
  opJobs.known.add(job.job_id);
  return el("tr", { "data-job-id": job.job_id, class: fresh ? "fresh" : "", "aria-label": `job ${job.job_id}` },
    el("td", { class: "mono", title: job.job_id }, ui.short(job.job_id)), el("td", {}, job.original_filename),
    el("td", {}, job.user_id), el("td", { class: "mono" }, job.team_id ? ui.short(job.team_id) : ""),
    el("td", {}, el("span", { class: "badge " + job.status }, job.status)), el("td", {}, job.platform_target),
    el("td", {}, job.quality_preset), el("td", { class: "num" }, String(job.priority ?? 0)),
    el("td", {}, `${job.attempt}/${job.max_attempts}`), el("td", { class: "mono" }, iso(job.created_at)),
    el("td", {}, ...rowActions(job)));
}

function rowActions(job) {
  const actions = [];
  if (job.status === "queued" || job.status === "processing")
    actions.push(["Cancel", "cancelled", "Cancel this job? A worker running it loses it at its next heartbeat."]);
  if (job.status === "failed" || job.status === "cancelled")
    actions.push(["Retry", "queued", "Queue this job again, with a fresh attempt budget?"]);
  return actions.map(([label, status, question]) => {
    const button = el("button", { type: "button", class: "small secondary", "data-action": status,
                                  "aria-label": `${label} job ${job.job_id}` }, label);
    button.addEventListener("click", (event) => { event.stopPropagation(); changeJob(job, status, label, question); });
    return button;
  });
}

async function changeJob(job, status, label, question) {
  if (!(await ui.confirm(`${label} job ${ui.short(job.job_id)}`, `${job.original_filename} (${job.user_id}): ${question}`, label)))
    return;
  try {
    await ui.send("PATCH", `/jobs/${job.job_id}`, { status, reason: "operator console" });
    $("op-result").textContent = `${label}: job ${ui.short(job.job_id)} done.`;
  } catch (error) { $("op-error").textContent = `${label} refused: ${error.message}`; }
  scheduleOperatorJobs();
}

async function bulkRetry() {
  const f = opJobs.filters;
  if (f.status && f.status !== "failed") { $("op-error").textContent = "This filter's status is not failed: nothing to retry."; return; }
  const { status, ...filters } = f;
  let matched;
  try { matched = (await api(opListPath({ ...filters, status: "failed", limit: "1" }))).total; }
  catch (error) { $("op-error").textContent = error.message; return; }
  if (!matched) { $("op-result").textContent = "No failed job matches this filter."; return; }
  const described = Object.entries(filters).map(([k, v]) => `${k} = ${v}`).join(", ") || "no filter: every failed job";
  if (!(await ui.confirm(`Retry ${matched} failed job(s)?`, `Filter: ${described}. Each is queued again with a fresh attempt budget.`,
                         `Retry ${matched}`))) return;
  try {
    const result = await ui.send("POST", "/admin/jobs/retry-failed", { ...filters, reason: "bulk retry (operator console)" });
    opJobs.lastBulk = result;
    const refused = result.results.filter((r) => !r.ok).map((r) => `${ui.short(r.job_id)}: ${r.error_type}`);
    $("op-result").textContent = `Retried ${result.retried} of ${result.matched} failed job(s)` +
      (refused.length ? `; refused: ${refused.join(", ")}` : "") + (result.more ? "; more match: run it again." : ".");
  } catch (error) { $("op-error").textContent = `Bulk retry refused: ${error.message}`; }
  scheduleOperatorJobs();
}

function applyOperatorFilters() {
  opJobs.filters = ui.formValues($("op-filters"));
  opJobs.pager.reset(); opJobs.known.clear();
  $("op-result").textContent = "";
  ui.writeUrl("jobs", opJobs.filters);
  loadOperatorJobs();
}

$("op-filters").addEventListener("submit", (e) => { e.preventDefault(); applyOperatorFilters(); });
$("op-filters").addEventListener("change", (e) => { if (e.target.tagName === "SELECT") applyOperatorFilters(); });
$("op-bulk-retry").addEventListener("click", bulkRetry);
$("op-next").addEventListener("click", () => { if (opJobs.pager.forward()) loadOperatorJobs(); });
$("op-prev").addEventListener("click", () => { if (opJobs.pager.back()) loadOperatorJobs(); });
ui.keyboardRows($("op-jobs"), (row) => openAuditTimeline(row.dataset.jobId));
$("op-jobs").addEventListener("click", (e) => { const row = e.target.closest("tr"); if (row && e.target.tagName !== "BUTTON") openAuditTimeline(row.dataset.jobId); });
state.onChange.push(() => { if (isService()) scheduleOperatorJobs(); });
state.onSignIn.push(() => {
  if (!isService()) return;
  const wanted = ui.urlValues();
  ui.fillForm($("op-filters"), (wanted.view || "jobs") === "jobs" ? wanted : {});
  opJobs.filters = ui.formValues($("op-filters")); opJobs.pager.reset(); opJobs.known.clear();
  loadOperatorJobs();
});
