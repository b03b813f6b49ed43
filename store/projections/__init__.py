"""SQL access for the read models, by concern; every name is importable from here.

- rows: the models rows leave as (JobRow, Checkpoint, JobChange, ...), keys and column orders;
- checkpoints: a projector's checkpoint, its lease, the doorbell, its lag;
- apply: the apply transaction (a batch's events with the rows they touch; its writes in one statement);
- feed: the change feed, and the stuck jobs the detector resets;
- replay: rebuild and verify's SQL (streams, shadow tables, recounts and their differences);
- fold, deltas: the read models as a pure function of the events (rows, counter deltas);
- rebuild, verify: fold every event from nothing into fresh tables, or compare with the live ones.
"""

from .apply import BatchRead, lock_batch, read_batch, write_batch
from .checkpoints import (
    arm_doorbell,
    discard_plans,
    doorbell_holders,
    ensure_checkpoint,
    get_checkpoint,
    get_leadership,
    lift_statement_timeout,
    lock_checkpoint,
    release_doorbell,
    sample_lag,
    try_lock_leadership,
    unlock_leadership,
)
from .feed import fetch_change_visibility, fetch_changes, fetch_last_change_seq, find_stuck_jobs, prune_changes
from .fold import ProjectionGap, Voids, fold, fold_rows
from .rebuild import RebuildResult, rebuild_projections
from .replay import (
    copy_replay_jobs,
    copy_replay_stats,
    create_replay_tables,
    diff_run_queue,
    diff_stats_recount,
    diff_transition_counts,
    fetch_daily,
    fetch_platform_stats,
    fetch_stats,
    merge_replay,
    recount_transitions,
    stream_events_by_job,
    stream_jobs,
    transition_counts,
)
from .rows import (
    DAILY_FIELDS,
    GENERATED_JOB_COLUMNS,
    JOB_COLUMNS,
    PLATFORM_FIELDS,
    STATS_FIELDS,
    Checkpoint,
    DailyKey,
    Difference,
    Fold,
    FoldedRows,
    JobChange,
    JobRow,
    LagSample,
    PlatformKey,
    StatsKey,
    StuckJob,
    scope_owner,
)
from .verify import VerifyResult, verify_projections

__all__ = [
    "BatchRead", "lock_batch", "read_batch", "write_batch",
    "arm_doorbell", "discard_plans", "doorbell_holders", "ensure_checkpoint", "get_checkpoint", "get_leadership",
    "lift_statement_timeout", "lock_checkpoint", "release_doorbell", "sample_lag", "try_lock_leadership",
    "unlock_leadership",
    "fetch_change_visibility", "fetch_changes", "fetch_last_change_seq", "find_stuck_jobs", "prune_changes",
    "copy_replay_jobs", "copy_replay_stats", "create_replay_tables", "diff_run_queue", "diff_stats_recount",
    "diff_transition_counts", "fetch_daily", "fetch_platform_stats", "fetch_stats", "merge_replay",
    "recount_transitions", "stream_events_by_job", "stream_jobs", "transition_counts",
    "DAILY_FIELDS", "GENERATED_JOB_COLUMNS", "JOB_COLUMNS", "PLATFORM_FIELDS", "STATS_FIELDS", "Checkpoint", "DailyKey", "Difference",
    "JobChange", "JobRow", "LagSample", "PlatformKey", "StatsKey", "StuckJob", "scope_owner",
    "Fold", "FoldedRows", "ProjectionGap", "Voids", "fold", "fold_rows", "RebuildResult", "rebuild_projections", "VerifyResult",
    "verify_projections",
]
