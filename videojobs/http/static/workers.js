/* The workers panel: the registry (GET /api/v1/admin/workers), for service tokens only (the endpoint is
   theirs). Refreshed every few seconds: a worker's heartbeat is an in-place update of its row, not a
   change-feed event. Uses app.js's helpers ($, el, api, iso, isService, state). */
"use strict";

const WORKERS_REFRESH_MS = 5000;

async function refreshWorkers() {
  const card = $("workers-card");
  card.hidden = !state.token || !isService();
  if (card.hidden) return;
  try {
    const { workers } = await api("/admin/workers?limit=200");
    $("workers").replaceChildren(...workers.map(workerRow));
    $("workers-empty").hidden = workers.length > 0; ui.showTable($("workers"));
    const count = (s) => workers.filter((w) => w.state === s).length;
    $("workers-title").textContent = `${count("running")} running` + (count("lost") ? `, ${count("lost")} lost` : "");
  } catch (error) { if (error.message !== "401") $("workers-title").textContent = error.message; }
}

function workerRow(w) {
  return el("tr", { "data-worker-id": w.worker_id, class: "worker " + w.state },
    el("td", { class: "mono" }, w.worker_id), el("td", {}, el("span", { class: "badge " + w.state }, w.state)),
    el("td", {}, w.host), el("td", {}, String(w.pid)), el("td", {}, `${w.running}/${w.concurrency}`),
    el("td", {}, (w.platforms || ["all"]).join(", ")), el("td", { class: "mono" }, iso(w.last_seen_at)),
    el("td", {}, w.version));
}

state.onSignIn.push(() => setTimeout(refreshWorkers));
setInterval(refreshWorkers, WORKERS_REFRESH_MS);
refreshWorkers();
