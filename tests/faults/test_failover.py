"""The failover drill (issue 22, item 4; tests/support/failover.py): promote a lagging standby while writers
run, repoint vjm at it, and account for every acknowledged append.

With `synchronous_standby_names` every acknowledged append is on the promoted server. Without it the
appends acknowledged while the standby lagged are lost, and the account says exactly which: each is in
the old primary's log (committed there, never replicated), and everything the promoted server holds is
in the old log too (it is a prefix, nothing invented). Either way the projector resumes on the promoted
server from its replicated checkpoint: every event applied once (the checkpoint's count), the change
feed gap-free, the read models equal to a replay of the log.
"""

from __future__ import annotations

import structlog

from tests.support.failover import DrillReport, run_drill
from tests.support.fault_sizes import scaled

log = structlog.get_logger("vjm.tests.failover")


def _projector_resumed(report: DrillReport) -> None:
    assert report.verify_ok, report.verify_differences
    assert report.checkpoint_events == report.events  # every event applied, none twice
    assert report.feed_rows == report.feed_max_seq == report.checkpoint_change_seq  # the feed: 1..n, no gap
    assert report.acknowledged_after > 0 and report.survivors_all_on_old_primary


async def test_with_a_synchronous_standby_every_acknowledged_append_survives_the_failover() -> None:
    report = await run_drill(True, before=scaled(200), after=scaled(100))
    log.info("failover_drill", synchronous=True, lost=len(report.lost), acknowledged=report.acknowledged_before_crash,
             ambiguous=report.ambiguous, seconds_to_promote=round(report.seconds_to_promote, 3))
    assert report.lost == []
    _projector_resumed(report)


async def test_without_one_the_appends_the_standby_had_not_received_are_lost_and_accounted_for() -> None:
    report = await run_drill(False, before=scaled(200), during=scaled(150), after=scaled(100))
    log.info("failover_drill", synchronous=False, lost=len(report.lost), acknowledged=report.acknowledged_before_crash,
             ambiguous=report.ambiguous, seconds_to_promote=round(report.seconds_to_promote, 3))
    assert report.lost_only_while_lagging  # nothing acknowledged before the standby stopped receiving is lost
    assert report.lost_all_on_old_primary  # each lost append was committed on the old primary, never replicated
    _projector_resumed(report)
