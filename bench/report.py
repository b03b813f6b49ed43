"""The suite's report: a markdown table of every figure as a ratio, and a plot of W1 and W3."""

from __future__ import annotations

from pathlib import Path


def _yes(met: bool | None) -> str:
    return "n/a" if met is None else ("yes" if met else "**no**")


def markdown(report: dict, image: str | None = None) -> str:
    """The headline figures as a markdown table (plus the plot, when there is one)."""
    server = report["server"]
    load = report.get("load_average_before")
    lines = [f"Run of {report['date']} ({'smoke' if report['smoke'] else 'full'}), "
             f"{server['version'].split(' on ')[0]}, fdatasync {server['pg_test_fsync'].get('usecs_per_op', '?')} "
             f"us/op: **{server.get('regime', 'regime not recorded')}**, load average before {load or '?'}, "
             f"suite {report.get('wall_seconds', '?')} s.", ""]
    lines += _table(report["workloads"])
    if "fast_commit" in report:
        fast = report["fast_commit"]
        lines += ["", f"Fast-commit run (not durable: an embedded {fast['server']['version'].split(' on ')[0]} whose "
                      f"data directory is a tmpfs, {fast['server'].get('regime')}): what CPU alone allows. Kept apart "
                      f"from the durable figures above.", ""]
        lines += _table(fast["workloads"])
    if image:
        lines += ["", f"![W1 and W3 across connection and worker counts]({image})"]
    return "\n".join(lines) + "\n"


def _table(w: dict) -> list[str]:
    lines = ["| workload | figure | vjm | reference | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for name, rows in (("write_path", _w1), ("bulk_create", _w2), ("lifecycle", _w3), ("projection_lag", _w4),
                       ("reads", _w5), ("fanout", _w6), ("rebuild", _rebuild), ("http_api", _http),
                       ("runtime_drain", _runtime_drain), ("wakeup", _wakeup), ("heartbeat", _heartbeat), ("claims", _claims),
                       ("history_length", _w7), ("http_hey", _http_hey), ("projector_cost", _projector_cost),
                       ("pooler", _pooler), ("replica_lag", _replica_lag)):
        if name in w:
            lines += rows(w[name])
    return lines


def _w1(r: dict) -> list[str]:
    """Issue 20's W1 targets: one caller >= 0.6x INSERT+NOTIFY; with write combining at 8 and 32 callers
    >= 1.0x INSERT+NOTIFY, >= 0.8x INSERT and an append p99 at most 2x the INSERT's."""
    out = []
    for row in r["rows"]:
        c = row["connections"]
        target = 0.6 if c == 1 else None
        out.append(f"| W1 writes, {c} conn | transitions/s | {row['vjm_per_s']} | INSERT+NOTIFY "
                   f"{row['ceiling_notify_per_s']} | {row['ratio_vs_notify_ceiling']} | "
                   f"{f'>= {target}' if target else ''} | "
                   f"{_yes(row['ratio_vs_notify_ceiling'] >= target) if target else ''} |")
        out.append(f"| W1 writes, {c} conn | transitions/s | {row['vjm_per_s']} | INSERT {row['ceiling_insert_per_s']}"
                   f" | {row['ratio_vs_insert_ceiling']} | | |")
        if "vjm_combined_per_s" in row:
            out += _w1_combined(row, c)
        if "vjm_ringing_per_s" in row:
            out.append(f"| W1 writes, {c} conn, every append rings (doorbell held) | transitions/s | "
                       f"{row['vjm_ringing_per_s']} | INSERT+NOTIFY {row['ceiling_notify_per_s']} | "
                       f"{row['ringing_ratio_vs_notify_ceiling']} | | |")
        if "vjm_projected_per_s" in row:
            out.append(f"| W1 writes, {c} conn, projector running | transitions/s | {row['vjm_projected_per_s']} | "
                       f"INSERT+NOTIFY {row['ceiling_notify_per_s']} | {row['projected_ratio_vs_notify_ceiling']} | | |")
    return out


def _w1_combined(row: dict, c: int) -> list[str]:
    targeted = c > 1
    out = [f"| W1 writes, {c} conn, write combining | transitions/s | {row['vjm_combined_per_s']} | "
           f"INSERT+NOTIFY {row['ceiling_notify_per_s']} | {row['combined_ratio_vs_notify_ceiling']} | "
           f"{'>= 1.0' if targeted else ''} | "
           f"{_yes(row['combined_ratio_vs_notify_ceiling'] >= 1.0) if targeted else ''} |",
           f"| W1 writes, {c} conn, write combining | transitions/s | {row['vjm_combined_per_s']} | "
           f"INSERT {row['ceiling_insert_per_s']} | {row['combined_ratio_vs_insert_ceiling']} | "
           f"{'>= 0.8' if targeted else ''} | "
           f"{_yes(row['combined_ratio_vs_insert_ceiling'] >= 0.8) if targeted else ''} |"]
    if "combined_p99_vs_insert_p99" in row:
        ratio = row["combined_p99_vs_insert_p99"]
        out.append(f"| W1 writes, {c} conn, write combining | append p99 ms | {row['vjm_combined_p99_ms']} | "
                   f"INSERT {row['ceiling_insert_p99_ms']} | {ratio} | {'<= 2' if targeted else ''} | "
                   f"{_yes(ratio <= 2) if targeted else ''} |")
    return out


def _w2(r: dict) -> list[str]:
    out = []
    for row in r["rows"]:
        out.append(f"| W2 bulk create {row['jobs']} (bulk_create_jobs) | rows/s | {row['vjm_rows_per_s']} | COPY "
                   f"{row['copy_rows_per_s']} | {row['ratio_vs_copy']} | >= 0.25 | {_yes(row['met'])} |")
        out.append(f"| W2 bulk create {row['jobs']} (EventStore.append_creates) | rows/s | "
                   f"{row['vjm_store_rows_per_s']} | COPY {row['copy_rows_per_s']} | {row['store_ratio_vs_copy']} | "
                   f"| |")
    return out


def _w3(r: dict) -> list[str]:
    out = []
    for row in r["rows"]:
        label = f"W3 drain {row['jobs']}, {row['workers']} workers, batch {row['batch_size']}"
        out.append(f"| {label} | jobs/s | {row['vjm_jobs_per_s']} | procrastinate {row['procrastinate_jobs_per_s']} | "
                   f"{row['ratio_vs_procrastinate']} | >= 3 | {_yes(row['met_vs_procrastinate'])} |")
        out.append(f"| {label} | jobs/s | {row['vjm_jobs_per_s']} | PgQueuer {row['pgqueuer_jobs_per_s']} | "
                   f"{row['ratio_vs_pgqueuer']} | >= 1 | {_yes(row['met_vs_pgqueuer'])} |")
        if "vjm_projection_catch_up_s" in row:
            out.append(f"| {label}, projection shows the last completion | s after the drain | "
                       f"{row['vjm_projection_catch_up_s']} | | | | |")
        for variant, what in (("vjm_with_jobs", "complete_jobs returning each job"),
                              ("vjm_one_by_one", "complete_job per job")):
            if f"{variant}_jobs_per_s" in row:
                rate = row[f"{variant}_jobs_per_s"]
                out.append(f"| {label}, {what} | jobs/s | {rate} | PgQueuer {row['pgqueuer_jobs_per_s']} | "
                           f"{round(rate / row['pgqueuer_jobs_per_s'], 3)} | | |")
    return out


def _w4(r: dict) -> list[str]:
    out = []
    for fraction, lag in r.get("lag_by_fraction_of_max", {"50%": r["lag_at_half_max_rate"]}).items():
        target = fraction == "50%"
        paced = "" if lag.get("paced_as_planned", True) else " (pace not held)"
        out.append(f"| W4 projection lag at {fraction} of max ({lag.get('rate_achieved')}/s){paced} | p50 / p99 ms | "
                   f"{lag['p50_ms']} / {lag['p99_ms']} | 100 ms | {round(lag['p99_ms'] / 100, 3)} | "
                   f"{'p99 < 100' if target else ''} | {_yes(lag['p99_ms'] < 100) if target else ''} |")
    burst = r["burst_concurrent"]
    out.append(f"| vjm_jobs notifications, burst | count | {burst['notifications']} | {burst['events']} events | "
               f"{round(burst['notifications'] / burst['events'], 3)} | bounded | |")
    return out


def _w5(r: dict) -> list[str]:
    d = r["dataset"]
    out = []
    for read, t in r["targets"].items():
        out.append(f"| W5 {read} ({d['jobs']} jobs, {d['events']} events) | p99 ms (raw SQL) | {t['p99_ms']} "
                   f"({t['raw_p99_ms']}) | target {t['target_ms']} ms | {t['ratio_to_target']} | < 1 | "
                   f"{_yes(t['met'])} |")
    f = r["figures"]
    out.append(f"| W5 OFFSET page at depth {r['depth']} | p99 ms (raw SQL) | {f['offset_page']['p99_ms']} "
               f"({f['offset_page_raw']['p99_ms']}) | keyset {f['keyset_page']['p99_ms']} | "
               f"{round(f['offset_page']['p99_ms'] / f['keyset_page']['p99_ms'], 2)} | | |")
    out.append(f"| W5 dataset build | events/s | {round(d['events'] / d['total_s'])} | {d['total_s']} s | | | |")
    return out


def _w6(r: dict) -> list[str]:
    if r.get("blocked"):
        return [f"| W6 SSE fan-out | | blocked: {r['blocked']} | | | p99 < 250 | n/a |"]
    return [f"| W6 SSE fan-out, {r['subscribers']}/{r['subscribers_wanted']} subscribers, {r['write_rate_per_s']}"
            f" writes/s | p50 / p99 ms | {r['p50_ms']} / {r['p99_ms']} | 250 ms | {r['ratio_to_target']} | "
            f"p99 < 250 | {_yes(r['met'])} |"]


def _replica_lag(r: dict) -> list[str]:
    """Issue 22: a streaming standby under W1 at 50% (its own pair: bench/replica_lag.py)."""
    lag, rate = r["lag"], r["target_rate_events_per_s"]
    out = [f"| standby replays the primary's flushed WAL (a read after a write waits for it), W1 at 50% "
           f"({lag['rate_achieved']}/s of {rate}) | p50 / p99 ms | {lag['flushed_p50_ms']} / {lag['flushed_p99_ms']} | "
           f"100 ms | {round(lag['flushed_p99_ms'] / 100, 3)} | | |",
           f"| standby replays the primary's inserted WAL (the wait with synchronous_commit off), W1 at 50% | "
           f"p50 / p99 ms | {lag['wal_p50_ms']} / {lag['wal_p99_ms']} | 100 ms | {round(lag['wal_p99_ms'] / 100, 3)}"
           f" | | |",
           f"| standby read models lag, W1 at 50% | p50 / p99 ms | {lag['standby_models_p50_ms']} / "
           f"{lag['standby_models_p99_ms']} | 100 ms | {r['ratio_to_target']} | p99 < 100 | {_yes(r['met'])} |",
           f"| standby read models lag, W1 at 50% | p99 ms | {lag['standby_models_p99_ms']} | primary "
           f"{lag['primary_models_p99_ms']} | {r['standby_over_primary_models_p99']} | | |"]
    if "fanout" in r:
        f = r["fanout"]
        out.append(f"| W6 SSE fan-out, feed read from the standby | p50 / p99 ms | {f['standby']['p50_ms']} / "
                   f"{f['standby']['p99_ms']} | feed on the primary {f['primary']['p99_ms']} | "
                   f"{f['standby_over_primary_p99']} | p99 < 250 | {_yes(f['met'])} |")
    return out


def _rebuild(r: dict) -> list[str]:
    rate = r["rebuild_from_empty"]["events_per_s"]
    return [f"| rebuild from empty | events/s | {rate} | 20000 | {round(rate / 20000, 3)} | >= 1 | "
            f"{_yes(rate >= 20000)} |"]


def _projector_cost(r: dict) -> list[str]:
    c, w, b = r["catch_up"], r["w1_with_projector"], r["small_batches"]
    server = c["server_cpu_us_per_event"]
    return [f"| projector catch-up, {c['events']} events, batch {c['batch_size']} | events/s | {c['events_per_s']} "
            f"| | | | |",
            f"| projector CPU per event, Python (server backend) | us | {c['python_cpu_us_per_event']} "
            f"({'?' if server is None else server}) | | | | |",
            f"| projector CPU per batch of {b['batch_size']}, Python (server backend) | us | "
            f"{b['python_cpu_us_per_batch']} ({'?' if b['server_cpu_us_per_batch'] is None else b['server_cpu_us_per_batch']}) "
            f"| | | | |",
            f"| W1 writes, {w['connections']} conn, projector running | transitions/s | {w['vjm_projected_per_s']} | "
            f"projector stopped {w['vjm_per_s']} | {w['ratio']} | >= 0.85 | {_yes(w['ratio'] >= 0.85)} |"]


def _http(r: dict) -> list[str]:
    out = []
    for row in r.get("rows", []):
        out.append(f"| HTTP create+get, {row['clients']} clients | p50 ms | {row['http']['p50_ms']} | direct "
                   f"{row['direct']['p50_ms']} | {row.get('ratio_p50')} | | |")
    return out


def _http_hey(r: dict) -> list[str]:
    if r.get("skipped"):
        return [f"| W8 HTTP create (hey) | | skipped: {r['skipped']} | | | | n/a |"]
    vjm, top, c = r["vjm"], r["ceiling"], r["clients"]
    return [f"| W8 HTTP create, `vjm up`, {c} clients (hey) | req/s | {vjm['requests_per_s']} | ceiling app "
            f"{top['requests_per_s']} | {r['rate_ratio']} | >= {r['target_rate_ratio']:g} | "
            f"{_yes(r['rate_ratio'] >= r['target_rate_ratio'])} |",
            f"| W8 HTTP create, `vjm up`, {c} clients (hey) | p50 / p99 ms | {vjm['p50_ms']} / {vjm['p99_ms']} | "
            f"ceiling app {top['p50_ms']} / {top['p99_ms']} | {r['p99_ratio']} | p99 <= {r['target_p99_ratio']:g}x | "
            f"{_yes(r['p99_ratio'] <= r['target_p99_ratio'])} |"]


def _pooler(r: dict) -> list[str]:
    if r.get("skipped"):
        return [f"| W1/W3 through PgBouncer | | skipped: {r['skipped']} | | | | n/a |"]
    w1, w3 = r["w1"], r["w3"]
    return [f"| W1 through PgBouncer (transaction mode), {w1['writers']} writers, operator login | transitions/s | "
            f"{w1['pooled_per_s']} | direct {w1['direct_per_s']} | {w1['pooled_ratio_vs_direct']} | | |",
            f"| W1 through PgBouncer, login with a default role | transitions/s | {w1['pooled_default_role_per_s']} | "
            f"direct {w1['direct_per_s']} | {w1['pooled_default_role_ratio_vs_direct']} | | |",
            f"| raw INSERT through PgBouncer (the hop alone) | rows/s | {w1['raw_pooled_per_s']} | direct "
            f"{w1['raw_direct_per_s']} | {w1['raw_pooled_ratio_vs_raw_direct']} | | |",
            f"| W3 through PgBouncer, {w3['jobs']} jobs, {w3['workers']} workers | jobs/s | {w3['pooled_jobs_per_s']} | "
            f"direct {w3['direct_jobs_per_s']} | {w3['pooled_ratio_vs_direct']} | | |"]


def _runtime_drain(r: dict) -> list[str]:
    row = r["row"]
    label = f"W3 through the runtime, {row['jobs']} jobs, concurrency {row['concurrency']}"
    return [f"| {label} | jobs/s | {row['vjm_jobs_per_s']} | PgQueuer (8 picked at most) {row['pgqueuer_jobs_per_s']} | "
            f"{row['ratio_vs_pgqueuer']} | >= 1 | {_yes(row['met_vs_pgqueuer'])} |",
            f"| {label} | jobs/s | {row['vjm_jobs_per_s']} | PgQueuer uncapped, batch 10 "
            f"{row['pgqueuer_uncapped_jobs_per_s']} | {row['ratio_vs_pgqueuer_uncapped']} | | |",
            f"| {label} | jobs/s | {row['vjm_jobs_per_s']} | procrastinate {row['procrastinate_jobs_per_s']} | "
            f"{row['ratio_vs_procrastinate']} | | |"]


def _wakeup(r: dict) -> list[str]:
    vjm, peer = r["figures"]["vjm"], r["figures"]["pgqueuer"]
    return [f"| wake-up, create to start, idle worker ({vjm['jobs']} jobs) | p50 / p99 ms | {vjm['p50_ms']} / "
            f"{vjm['p99_ms']} | PgQueuer {peer['p50_ms']} / {peer['p99_ms']} | {r['p99_ratio_to_target']} | "
            f"p99 < {r['target_p99_ms']:g} | {_yes(r['met'])} |"]


def _heartbeat(r: dict) -> list[str]:
    return [f"| heartbeat, {r['jobs']} running jobs, {r['lease_seconds']:g} s lease | lease row updates/s "
            f"(statements/s) | {r['lease_updates_per_s']} ({r['renew_calls_per_s']}) | design "
            f"{r['design_updates_per_s']:g} | {r['ratio_to_design']} | 0 events | "
            f"{_yes(r['met'])} ({r['events_in_window']}) |"]


W7_LABELS = {"append": "report_progress", "append_sql": "report_progress's statement alone", "batch": "batch of 32 (append_events)",
             "batch_sql": "vjm.append_events alone", "claim": "claim_jobs", "get": "get_job_by_id",
             "get_sql": "get_job_by_id's statement alone"}


def _w7(r: dict) -> list[str]:
    """Per call, the longest history against the shortest: wall p50 (and server CPU, shared buffers) as ratios."""
    short, long = (str(n) for n in (r["lengths"][0], r["lengths"][-1]))
    out = []
    for figure, by in r["figures"].items():
        ratio, target = r["ratios"][figure][long], r["targets"].get(figure)
        extra = f"; server CPU {ratio['server_cpu']}" if "server_cpu" in ratio else ""
        buffers = r["buffers_per_call"]
        if figure in buffers[short]:
            extra += f"; buffers {buffers[long][figure]:g} / {buffers[short][figure]:g}"
        out.append(f"| W7 {W7_LABELS.get(figure, figure)}, {long} events per job | p50 / p99 ms | {by[long]['p50_ms']}"
                   f" / {by[long]['p99_ms']} | {short} events: {by[short]['p50_ms']} / {by[short]['p99_ms']} | "
                   f"{ratio['p50']}{extra} | {'<= 1.1' if target else ''} | {_yes(target['met']) if target else ''} |")
    return out


def _claims(r: dict) -> list[str]:
    d, drain = r["dataset"], r["drain"]
    out = []
    for name, f in r["figures"].items():
        caps, limit = name.split("_limit")
        limit, _, paced = limit.partition("_")
        load = f"paced at {f['offered_claims_per_s']:g} claims/s" if paced else "back to back (saturated)"
        label = f"W5 claim, {d['jobs']} queued, {d['users']} users, {r['claimers']} claimers, limit {limit}, " + (
            "caps" if caps == "caps" else "no caps") + f", {load}"
        out.append(f"| {label} | p50 / p99 ms (server p99) | {f['p50_ms']} / {f['p99_ms']} ({f['server_p99_ms']}) | "
                   f"target {r['target_p99_ms']:g} ms | {round(f['p99_ms'] / r['target_p99_ms'], 3)} | < 1 | "
                   f"{_yes(f['p99_ms'] < r['target_p99_ms'])} |")
    out.append(f"| W5 claims' queue build ({d['jobs']} creates) | creates/s | {d['creates_per_s']} | "
               f"{d['append_s']} s | | | |")
    out.append(f"| W3 through the runtime, {drain['jobs']} jobs, concurrency {drain['concurrency']} (claims run) | "
               f"jobs/s | {drain['vjm_jobs_per_s']} | PgQueuer (8 picked at most) {drain['pgqueuer_jobs_per_s']} | "
               f"{drain['ratio_vs_pgqueuer']} | | |")
    return out


def plot(report: dict, path: Path) -> Path | None:
    """W1 transitions/s across connections and W3 jobs/s across workers, side by side (PNG)."""
    w1, w3 = report["workloads"].get("write_path"), report["workloads"].get("lifecycle")
    if not w1 and not w3:
        return None
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    if w1:
        x = [r["connections"] for r in w1["rows"]]
        for key, label in (("vjm_per_s", "vjm (EventStore.append)"), ("vjm_ringing_per_s", "vjm, every append rings"),
                           ("ceiling_notify_per_s", "INSERT+NOTIFY"), ("ceiling_insert_per_s", "INSERT")):
            if all(key in r for r in w1["rows"]):
                axes[0].plot(x, [r[key] for r in w1["rows"]], marker="o", label=label)
        axes[0].set(title="W1 transition writes", xlabel="connections", ylabel="transitions/s", xscale="log")
    if w3:
        x = [r["workers"] for r in w3["rows"]]
        for key, label in (("vjm_jobs_per_s", "vjm (VideoJobManager)"), ("procrastinate_jobs_per_s", "procrastinate"),
                           ("pgqueuer_jobs_per_s", "PgQueuer")):
            axes[1].plot(x, [r[key] for r in w3["rows"]], marker="o", label=label)
        axes[1].set(title="W3 lifecycle drain", xlabel="workers", ylabel="jobs/s", xscale="log")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        ax.set_ylim(bottom=0)
    fig.suptitle(f"vjm benchmarks, {report['date']} ({'smoke' if report['smoke'] else 'full'})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
