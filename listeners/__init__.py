"""LISTEN/NOTIFY consumers: the projector (jobs, stats, change feed), the stuck-job
detector, rebuild/verify, live subscriptions (one per consumer, or many sharing a
ChangeFeedHub) and read-your-writes waits.

Depends on store/ and statemachine/ only.
"""

from store.projections import Checkpoint, Difference, JobChange, JobRow, LagSample

from .batch import BatchResult, project_batch
from .feed_hub import ChangeFeedHub, FeedHubConfig, FeedSubscription
from .fold import Fold, ProjectionGap, fold
from .listening import connect_with_role
from .notifications import BatchNotice, JobNotice, parse_notice
from .projector import ProjectionResult, Projector, ProjectorConfig
from .read_your_writes import ProjectionWatcher, wait_for_projection
from .replay import RebuildResult, rebuild_projections
from .stuck_detector import DetectorResult, StuckDetector, StuckDetectorConfig
from .subscriptions import JobChangeSubscription, subscribe_job_changes
from .verify import VerifyResult, verify_projections

__all__ = [
    "Checkpoint", "Difference", "JobChange", "JobRow", "LagSample", "BatchResult", "project_batch", "Fold",
    "ProjectionGap", "fold", "BatchNotice", "JobNotice", "parse_notice", "ProjectionResult", "Projector",
    "ProjectorConfig", "ProjectionWatcher", "wait_for_projection", "RebuildResult", "VerifyResult",
    "rebuild_projections", "verify_projections", "DetectorResult", "StuckDetector", "StuckDetectorConfig",
    "JobChangeSubscription", "subscribe_job_changes", "ChangeFeedHub", "FeedHubConfig", "FeedSubscription",
    "connect_with_role",
]
