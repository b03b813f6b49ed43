"""Replica lag under W1 at 50% load, and W6's SSE fan-out with the feed read from the standby (issue 22).

The workload runs on a primary and a streaming standby of its own (tests/support/standby.py:
the embedded server's binaries, `pg_basebackup -R`, asynchronous streaming over a Unix socket,
fsync on, synchronous_commit on), in a temporary directory on this machine's disk, not on the
bench server: a standby needs a primary it can base-back-up. Its regime (fdatasync in that
directory, the settings) is recorded with the figures.

1. W1's max rate on the primary: `writers` connections append create -> start -> progress ->
   complete (`EventStore.append`, autocommit), no projector.
2. At 50% of it, paced open loop, the projector in its own process on the primary. Two probes,
   one connection each, read every millisecond: on the primary its WAL insert position and
   projector checkpoint, on the standby its replay position and replicated checkpoint.
   - WAL: a primary reading (t, flush position) is replayed at the first standby reading at or
     past it: the replication's own lag (a standby is sent flushed WAL only), and what a read
     after a write waits for before it may run on the standby when commits are synchronous
     (videojobs/manager/reads.py). The same from the insert position (WAL of commits still
     being flushed included) is what it waits for when they are not (synchronous_commit off).
   - Read-model lag: an append returned at t with cursor c is readable on the standby (on the
     primary) at the first reading whose checkpoint is at or past c: what a list after a write
     waits for. The primary's figure is W4's, measured in the same run: the ratio is what
     the replication adds.
   Rounds: one warm-up and 3 (smoke: 1, no warm-up); medians of p50/p99/max.
3. W6 (bench.fanout, full run only): 100 SSE clients with service tokens, 200 appends/s, the app's
   change-feed hub reading the feed from the primary and from the standby, interleaved (one
   warm-up and 3 rounds each, medians).

`python -m bench.replica_lag [--smoke]` prints one JSON object (the bench server is not used).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from store import EventStore, create_pool, with_database

from . import fanout
from .common import fresh_database, interleaved_figures, percentile, projector_process, server_facts, wait_projected
from .projection_lag import _writer, max_write_rate

TARGET_P99_MS = 100.0  # W4's target for the read models at 50% of the max rate, here for the standby
# A primary's WAL insert and flush positions, a standby's replay position (twice); the projector's checkpoint.
POSITION = ("SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END"
            " - '0/0'::pg_lsn)::bigint, (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
            " ELSE pg_current_wal_flush_lsn() END - '0/0'::pg_lsn)::bigint, c.xact_id, c.position"
            " FROM vjm.projection_checkpoints c WHERE c.name = 'main'")


class Probe:
    """Readings (time, WAL position, checkpoint cursor) of one server, every `every` seconds until stopped."""

    def __init__(self, url: str, every: float = 0.001) -> None:
        self.url, self.every = url, every
        self.times: list[float] = []
        self.wal: list[int] = []      # the primary's insert position (a standby: replayed)
        self.flushed: list[int] = []  # the primary's flush position (a standby: replayed)
        self.cursors: list[tuple[int, int]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            while not self._stop.is_set():
                at = time.monotonic()
                row = await conn.fetchrow(POSITION)
                assert row is not None, "no projector checkpoint"
                wal, flushed, xact, position = row
                self.times.append(at)
                self.wal.append(int(wal))
                self.flushed.append(int(flushed))
                self.cursors.append((int(xact), int(position)))
                await asyncio.sleep(self.every)  # sampling interval
        finally:
            await conn.close()

    def stop(self) -> None:
        self._stop.set()

    def first_at(self, values: list, target: Any, after: float) -> float | None:
        """When a reading first had `values` at or past `target` (None: never)."""
        index = bisect.bisect_left(values, target)
        return None if index == len(values) else max(self.times[index], after)


def _lags(probe: Probe, values: list, marks: list[tuple[float, Any]]) -> list[float]:
    """For each (t, target): when `probe` first read `values` at or past target, minus t (never read: left out)."""
    return [at - t for t, target in marks if (at := probe.first_at(values, target, t)) is not None]


def _figures(lags: list[float]) -> dict[str, float]:
    ms = [1000 * lag for lag in lags]
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(percentile(ms, 0.99), 2),
            "max_ms": round(max(ms), 2), "samples": len(ms)}


async def lag_round(primary: str, standby: str, rate: float, writers: int, seconds: float) -> dict[str, float]:
    """One paced round: WAL replay lag and read-model lag on the standby and on the primary."""
    on_primary, on_standby = Probe(primary), Probe(standby)
    probes = [asyncio.create_task(p.run()) for p in (on_primary, on_standby)]
    pool = await create_pool(primary, min_size=writers, max_size=writers)
    try:
        appends: list = []
        until = time.monotonic() + seconds
        await asyncio.gather(*(_writer(EventStore(pool), until, writers / rate, appends) for _ in range(writers)))
        last = max(c for _, c in appends)
        async with asyncio.timeout(60):
            while not on_standby.cursors or on_standby.cursors[-1] < last:  # noqa: ASYNC110 - the probe task fills it
                await asyncio.sleep(0.01)  # poll: until the standby shows the last append projected
    finally:
        for probe in (on_primary, on_standby):
            probe.stop()
        await asyncio.gather(*probes)
        await pool.close()
    marks = [i for i, t in enumerate(on_primary.times) if t < until]
    wal_lag = _lags(on_standby, on_standby.wal, [(on_primary.times[i], on_primary.wal[i]) for i in marks])
    flushed_lag = _lags(on_standby, on_standby.wal, [(on_primary.times[i], on_primary.flushed[i]) for i in marks])
    standby_models = _lags(on_standby, on_standby.cursors, appends)
    primary_models = _lags(on_primary, on_primary.cursors, appends)
    figures = {f"wal_{k}": v for k, v in _figures(wal_lag).items()}
    figures |= {f"flushed_{k}": v for k, v in _figures(flushed_lag).items()}
    figures |= {f"standby_models_{k}": v for k, v in _figures(standby_models).items()}
    figures |= {f"primary_models_{k}": v for k, v in _figures(primary_models).items()}
    return figures | {"rate_achieved": round(len(appends) / seconds, 1)}


async def run(url: str, smoke: bool) -> dict:
    """The pair, W1's max rate, the lag rounds at 50%, and (full runs) W6 on the primary and on the standby.
    `url` (the bench server's fresh database) is not used: see the module's docstring."""
    from tests.support.standby import StandbyPair

    pair = StandbyPair.make()
    try:
        pair.start()
        await pair.wait_streaming()
        async with fresh_database(pair.primary.url()) as primary:
            standby = with_database(pair.standby.url(), urlsplit(primary).path.lstrip("/"))
            await pair.caught_up()
            result = await _measure(primary, standby, smoke)
        if not smoke:
            result["fanout"] = await _fanout(pair)
        result["pair"] = await _pair_facts(pair.primary.url(), smoke)
        return result
    finally:
        pair.stop()


async def _pair_facts(admin_url: str, smoke: bool) -> dict:
    """The pair's version and settings; in a full run also its disk regime (pg_test_fsync takes 16 s: the smoke run
    leaves it to the suite's figure for the bench server)."""
    standby = {"standby": "asynchronous streaming over a Unix socket, hot_standby_feedback on"}
    if not smoke:
        return await server_facts(admin_url) | standby
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch("SELECT name, setting FROM pg_settings WHERE name = ANY($1)",
                                ["fsync", "synchronous_commit", "wal_sync_method", "full_page_writes"])
        version = await conn.fetchval("SELECT version()")
    finally:
        await conn.close()
    return {"version": version, "settings": {r["name"]: r["setting"] for r in rows},
            "regime": "not probed in a smoke run (see the suite's)"} | standby


async def _measure(primary: str, standby: str, smoke: bool) -> dict:
    writers, seconds = (8, 2.0) if smoke else (16, 8.0)
    max_rate = await max_write_rate(primary, writers, seconds)
    rate = max_rate / 2

    async def one_round() -> dict[str, float]:
        return await lag_round(primary, standby, rate, writers, seconds)

    async with projector_process(primary):
        conn = await asyncpg.connect(primary)
        try:
            await wait_projected(conn)  # the max-rate run's events, before any round
        finally:
            await conn.close()
        rounds = {"standby": await one_round()} if smoke else await interleaved_figures({"standby": one_round}, 3)
    lag = rounds["standby"]
    p99 = lag["standby_models_p99_ms"]
    result: dict[str, Any] = {
        "benchmark": "replica_lag", "workload": "replica lag under W1 at 50%", "smoke": smoke, "writers": writers,
        "max_write_rate_events_per_s": round(max_rate, 1), "target_rate_events_per_s": round(rate, 1), "lag": lag,
        "target_p99_ms": TARGET_P99_MS, "ratio_to_target": round(p99 / TARGET_P99_MS, 3),
        "standby_over_primary_models_p99": round(p99 / lag["primary_models_p99_ms"], 3)
        if lag["primary_models_p99_ms"] else None, "met": p99 < TARGET_P99_MS}
    return result


async def _fanout(pair: Any) -> dict:
    """W6 with the app's feed hub on the primary and on the standby, interleaved; each run on a fresh database
    (bench.fanout counts the deliveries due from the whole feed table)."""
    keys = ("p50_ms", "p99_ms", "subscribers", "deliveries", "deliveries_expected", "db_connections")

    def variant(on_standby: bool) -> Callable[[], Awaitable[dict[str, float]]]:
        async def one() -> dict[str, float]:
            async with fresh_database(pair.primary.url()) as primary:
                standby = with_database(pair.standby.url(), urlsplit(primary).path.lstrip("/"))
                await pair.caught_up()
                figures = await fanout.run(primary, False, read_url=standby if on_standby else None)
            if figures["p99_ms"] is None:
                raise RuntimeError(f"W6 delivered nothing: {figures}")
            return {k: figures[k] for k in keys}
        return one

    runs = await interleaved_figures({"feed_on_primary": variant(False), "feed_on_standby": variant(True)}, 3)
    on_primary, on_standby = runs["feed_on_primary"], runs["feed_on_standby"]
    complete = all(r["deliveries"] == r["deliveries_expected"] for r in on_standby["samples"])
    return {"primary": on_primary, "standby": on_standby, "target_p99_ms": fanout.TARGET_P99_MS,
            "standby_over_primary_p99": round(on_standby["p99_ms"] / on_primary["p99_ms"], 3),
            "every_change_delivered": complete, "met": complete and on_standby["p99_ms"] < fanout.TARGET_P99_MS}


def main() -> None:
    """Entry point: this workload alone (its own pair of servers), results as JSON on stdout."""
    import argparse

    from store.logs import configure_logging

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small and quick (CI)")
    args = parser.parse_args()
    configure_logging("WARNING", json=True)
    load = os.getloadavg()
    result = asyncio.run(run("", args.smoke))
    result["load_average_before"], result["load_average_after"] = list(load), list(os.getloadavg())
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
