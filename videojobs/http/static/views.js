/* The two consoles as tabs: Jobs (the operator console for a service token, the end user's dashboard
   otherwise) and Audit. The URL names the view (?view=audit) with its filters. Loaded last: it signs in. */
"use strict";

const VIEWS = ["jobs", "audit"];

function showView(view) {
  view = VIEWS.includes(view) ? view : "jobs";
  state.view = view;
  for (const name of VIEWS) {
    const tab = $("tab-" + name), selected = name === view;
    tab.setAttribute("aria-selected", String(selected)); tab.tabIndex = selected ? 0 : -1;
    $("view-" + name).hidden = !selected;
  }
  $("view-operator").hidden = !isService(); $("view-user").hidden = isService();
  const values = view === "audit" ? audit.filters : isService() ? opJobs.filters : state.filters;
  ui.writeUrl(view, values);
  if (view === "audit" && !audit.searched) searchEvents();
}

state.onSignIn.push(() => {
  $("tabs").hidden = false;
  $("tab-jobs").textContent = isService() ? "Operator" : "Jobs";
  if (!isService()) ui.fillForm($("filters"), ui.urlValues().view === "jobs" ? ui.urlValues() : {});
  showView(ui.urlValues().view);
});

for (const name of VIEWS) $("tab-" + name).addEventListener("click", () => showView(name));
$("tabs").addEventListener("keydown", (event) => {  // the tab pattern: arrows move between tabs
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (!step) return;
  const next = VIEWS[(VIEWS.indexOf(state.view) + step + VIEWS.length) % VIEWS.length];
  showView(next); $("tab-" + next).focus();
});
start();
