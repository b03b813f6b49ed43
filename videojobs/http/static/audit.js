/* The auditor's console (any token; RLS decides what it finds: an end user, their own trail): search
   the log with find_events' filters, a job's timeline and the job as of an instant, verify the hash
   chain of a job or of the whole log, and export a search as JSON Lines or CSV.
   GET /api/v1/audit/events, /audit/events/export, /audit/verify, /jobs/{id}/events, /jobs/{id}?as_of=. */
"use strict";

const audit = { pager: ui.pager(), loads: ui.latest(), filters: {}, items: [], job: null, searched: false, lastExport: null, PAGE: 100 };
window.vjmAudit = audit;

function auditQuery(extra = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(audit.filters)) q.set(k, k === "since" || k === "until" ? ui.utc(v) : v);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q;
}

async function searchEvents() {
  if (!state.token) return;
  audit.searched = true;
  const q = auditQuery({ limit: String(audit.PAGE) });
  if (audit.pager.cursor != null) q.set("after", audit.pager.cursor);
  const ticket = audit.loads.take();
  try {
    const page = await api(`/audit/events?${q}`);
    if (!audit.loads.current(ticket)) return;
    audit.items = page.items; audit.pager.next = page.next_cursor;
    renderEvents(page.items);
    $("audit-error").textContent = "";
  } catch (error) { if (error.message !== "401") $("audit-error").textContent = error.message; }
}

function renderEvents(items) {
  const body = $("audit-events");
  body.replaceChildren(...items.map((e) => el("tr", { "data-position": String(e.position), "data-job-id": e.job_id,
                                                      "aria-label": `event ${e.position}, ${e.type} of job ${e.job_id}` },
    el("td", { class: "num" }, String(e.position)), el("td", { class: "mono" }, iso(e.occurred_at)),
    el("td", { class: "mono", title: e.job_id }, ui.short(e.job_id)), el("td", { class: "num" }, String(e.version)),
    el("td", {}, e.type), el("td", {}, `${e.from_state || "–"} → ${e.to_state}`), el("td", {}, e.actor),
    el("td", {}, e.user_id))));
  ui.rovingRows(body);
  $("audit-empty").hidden = items.length > 0; ui.showTable(body);
  $("audit-total").textContent = `${items.length} on this page`;
  ui.showPager("audit", audit.pager, items.length);
}

async function showTimeline(jobId) {
  audit.job = jobId;
  $("audit-job").textContent = ui.short(jobId);
  $("audit-verify-job").disabled = false;
  $("audit-asof-result").replaceChildren();
  try {
    const history = await api(`/jobs/${jobId}/events`);
    $("audit-timeline").replaceChildren(...history.events.map((e) => el("li", { class: e.to_state, "data-position": String(e.position) },
      el("div", {}, el("strong", {}, e.type), ` ${e.from_state || "–"} → ${e.to_state}`, e.attempt ? ` · attempt ${e.attempt}` : ""),
      el("div", { class: "meta" }, `#${e.position} v${e.version} · ${iso(e.occurred_at)} · by ${e.actor}`),
      ...eventDetail(e).map((text) => el("div", { class: "detail" }, text)))));
  } catch (error) { if (error.message !== "401") $("audit-timeline").replaceChildren(el("li", {}, error.message)); }
}

async function showAsOf(local) {
  if (!audit.job || !local) return;
  try {
    const job = await api(`/jobs/${audit.job}?as_of=${encodeURIComponent(ui.utc(local))}`);
    const facts = [["as of", ui.utc(local)], ["status", job.status], ["version", job.version],
                   ["attempt", `${job.attempt}/${job.max_attempts}`], ["progress", `${Math.round(job.progress_percent)}%`],
                   ["platform", job.platform_target], ["last activity", iso(job.last_activity_at)]];
    $("audit-asof-result").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  } catch (error) {
    $("audit-asof-result").replaceChildren(el("dt", {}, "as of"), el("dd", {}, error.status === 404 ? "the job did not exist yet" : error.message));
  }
}

async function verifyChain(jobId) {
  const out = $("audit-verify");
  out.className = "verdict"; out.textContent = "verifying…";
  try {
    const report = await api("/audit/verify" + (jobId ? `?job_id=${jobId}` : ""));
    const scope = jobId ? `job ${ui.short(jobId)}` : "the whole log";
    out.className = "verdict " + (report.ok ? "ok" : "broken");
    out.textContent = report.ok ? `ok: ${scope}, ${report.checked} event(s) checked, every link holds.`
      : `BROKEN: ${scope}, at job ${report.first_broken_job_id} version ${report.first_broken_version}` +
        (report.reason ? ` (${report.reason})` : "") + `; ${report.checked} event(s) checked.`;
    out.dataset.ok = String(report.ok);
  } catch (error) { out.className = "verdict broken"; out.textContent = error.message; delete out.dataset.ok; }
}

/* The server streams the export page by page; the browser keeps it as a Blob (Chromium pages large
   ones to disk) and saves it under the file name the server gives. */
async function exportEvents(format) {
  try {
    const response = await fetch(`${API}/audit/events/export?${auditQuery({ format })}`,
                                 { headers: { Authorization: "Bearer " + state.token } });
    if (!response.ok) throw new Error(await problemText(response));
    const blob = await response.blob(), link = el("a", { href: URL.createObjectURL(blob), download: `vjm-events.${format}` });
    audit.lastExport = { format, bytes: blob.size };
    document.body.append(link); link.click(); link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (error) { $("audit-error").textContent = `Export failed: ${error.message}`; }
}

function applyAuditFilters() {
  audit.filters = ui.formValues($("audit-filters"));
  audit.pager.reset();
  ui.writeUrl("audit", audit.filters);
  searchEvents();
}

/* From the operator's job list: this job's events and timeline. */
function openAuditTimeline(jobId) {
  ui.fillForm($("audit-filters"), { job_id: jobId });
  applyAuditFilters();
  showView("audit");
  showTimeline(jobId);
}

$("audit-filters").addEventListener("submit", (e) => { e.preventDefault(); applyAuditFilters(); });
$("audit-next").addEventListener("click", () => { if (audit.pager.forward()) searchEvents(); });
$("audit-prev").addEventListener("click", () => { if (audit.pager.back()) searchEvents(); });
$("audit-export-jsonl").addEventListener("click", () => exportEvents("jsonl"));
$("audit-export-csv").addEventListener("click", () => exportEvents("csv"));
$("audit-verify-job").addEventListener("click", () => verifyChain(audit.job));
$("audit-verify-all").addEventListener("click", () => verifyChain(null));
$("audit-asof").addEventListener("submit", (e) => { e.preventDefault(); showAsOf(new FormData(e.target).get("as_of")); });
ui.keyboardRows($("audit-events"), (row) => showTimeline(row.dataset.jobId));
$("audit-events").addEventListener("click", (e) => { const row = e.target.closest("tr"); if (row) showTimeline(row.dataset.jobId); });
state.onSignIn.push(() => {
  const wanted = ui.urlValues();
  ui.fillForm($("audit-filters"), wanted.view === "audit" ? wanted : {});
  audit.filters = ui.formValues($("audit-filters")); audit.pager.reset();
  audit.job = null; audit.items = []; audit.searched = false;  // views.js searches when the view is shown
  $("audit-verify-job").disabled = true;
});
