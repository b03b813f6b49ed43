/* Helpers the consoles share: requests that change things, forms and the URL, the confirmation dialog,
   keyboard navigation of table rows, keyset paging, and durations. Loaded first (app.js makes its loads'
   guards at once); uses app.js's $, el, api, state when called. */
"use strict";

const ui = {
  /* A request with a JSON body (POST, PATCH); the answer's JSON, or an Error carrying the problem's text. */
  async send(method, path, body) {
    const response = await fetch(API + path, { method, body: JSON.stringify(body),
      headers: { Authorization: "Bearer " + state.token, "Content-Type": "application/json" } });
    if (!response.ok) { const error = new Error(await problemText(response)); error.status = response.status; throw error; }
    return response.status === 204 ? null : response.json();
  },

  /* A form's filled-in fields, as an object (empty ones left out). */
  formValues(form) {
    return Object.fromEntries([...new FormData(form).entries()].filter(([, v]) => String(v).trim() !== "")
      .map(([k, v]) => [k, String(v).trim()]));
  },
  fillForm(form, values) {
    for (const field of form.elements) {
      if (field.name) field.value = values[field.name] ?? (field.tagName === "SELECT" ? field.options[0].value : "");
    }
  },

  /* The URL keeps the view and its filters (?view=audit&actor=...), so that a view can be shared. */
  urlValues() { return Object.fromEntries(new URLSearchParams(location.search)); },
  writeUrl(view, values) {
    const query = new URLSearchParams({ view, ...values }).toString();
    if (location.search.slice(1) !== query) history.replaceState(null, "", `${location.pathname}?${query}`);
  },

  /* The confirmation dialog: resolves true when the operator confirms. */
  confirm(title, body, okLabel) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title; $("confirm-body").textContent = body;
    $("confirm-ok").textContent = okLabel || "Confirm";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = ""; dialog.showModal(); $("confirm-ok").focus();
    });
  },

  /* Rows as one tab stop: arrows move between them, Home and End jump, Enter opens the focused row. */
  keyboardRows(body, open) {
    body.addEventListener("keydown", (event) => {
      const row = event.target.closest("tr");
      if (!row || event.target !== row) return;
      const rows = [...body.rows], at = rows.indexOf(row);
      const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 }[event.key];
      if (to !== undefined && rows[to]) { event.preventDefault(); ui.focusRow(body, rows[to]); }
      else if (event.key === "Enter") { event.preventDefault(); open(row); }
    });
  },
  focusRow(body, row) {
    for (const r of body.rows) r.tabIndex = r === row ? 0 : -1;
    row.focus();
  },
  /* A table without rows is hidden (its "none" line says so): no header without data cells. */
  showTable(body) { body.closest("table").hidden = body.rows.length === 0; },
  rovingRows(body) { [...body.rows].forEach((r, i) => { r.tabIndex = i === 0 ? 0 : -1; }); },

  /* Only the newest of overlapping loads may render: a live refresh started before a click must
     not paint over the page the click asked for. `const ticket = guard.take(); ... if
     (!guard.current(ticket)) return;` */
  latest() { return { n: 0, take() { return ++this.n; }, current(ticket) { return ticket === this.n; } }; },

  /* Keyset paging: the cursors of the pages seen, so that Previous goes back without offsets. */
  pager() {
    return { cursors: [null], index: 0, next: null,
      get cursor() { return this.cursors[this.index]; },
      reset() { this.cursors = [null]; this.index = 0; this.next = null; },
      forward() { if (this.next == null) return false; this.cursors[++this.index] = this.next; return true; },
      back() { if (this.index === 0) return false; this.index--; return true; } };
  },
  showPager(prefix, pager, shown) {
    $(prefix + "-prev").disabled = pager.index === 0;
    $(prefix + "-next").disabled = pager.next == null;
    $(prefix + "-page").textContent = `page ${pager.index + 1}` + (shown != null ? ` · ${shown} shown` : "");
  },

  /* "42 s", "3 min 5 s", "2 h 4 min": how long, for people. */
  duration(seconds) {
    if (seconds == null) return "–";
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  },
  short: (id) => "…" + String(id).slice(-8),
  /* A datetime-local value read as UTC (the consoles say so), as ISO 8601. */
  utc: (local) => (local.length === 16 ? local + ":00" : local) + "Z",

  /* Coalesces triggers: `run` starts at most `ms` after the first trigger (a steady stream of triggers
     cannot postpone it), never two runs at once, and once more after a run if triggered meanwhile. */
  debounce(run, ms) {
    let timer = null, running = false, again = false;
    const fire = async () => {
      timer = null;
      if (running) { again = true; return; }
      running = true;
      try { await run(); } finally { running = false; if (again) { again = false; trigger(); } }
    };
    const trigger = () => { if (timer === null) timer = setTimeout(fire, ms); };
    return trigger;
  },
};
window.vjmUi = ui;
