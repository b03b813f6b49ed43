"""bench/replica_lag.py's arithmetic: a lag is the first reading at or past the target, minus the mark's time."""

from __future__ import annotations

from bench.replica_lag import Probe, _lags


def test_a_lag_is_the_first_reading_at_or_past_the_target() -> None:
    standby = Probe("unused")
    standby.times = [1.0, 2.0, 3.0, 4.0]
    standby.wal = [10, 20, 20, 40]
    # Marked at 0.5 for WAL 15: first read at or past it at 2.0. Marked at 2.5 for WAL 20: reached at 2.0 already,
    # which cannot precede the mark: its lag is 0. WAL 50 is never read: left out, not counted as no lag.
    assert _lags(standby, standby.wal, [(0.5, 15), (2.5, 20), (3.0, 50)]) == [1.5, 0.0]


def test_cursors_compare_in_commit_order() -> None:
    standby = Probe("unused")
    standby.times = [1.0, 2.0]
    standby.cursors = [(5, 100), (6, 3)]
    assert _lags(standby, standby.cursors, [(0.0, (5, 200)), (0.0, (5, 100))]) == [2.0, 1.0]
