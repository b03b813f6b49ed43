"""What LISTEN wakes or what reads the log as it grows: the projector (jobs, stats, change
feed), the change-feed hub and single subscriptions, the stuck-job detector, and
read-your-writes waits (on the primary and on a standby); every long-running part in one
shape (service.py).

The pure fold, rebuild and verify are in store.projections. Depends on store/ and
statemachine/ only.
"""

from store.projections import Checkpoint, Difference, JobChange, JobRow, LagSample

from .batch import BatchResult, project_batch
from .feed_hub import ChangeFeedHub, FeedHubConfig, FeedSubscription
from .notifications import BatchNotice, JobNotice, parse_notice
from .projector import ProjectionResult, Projector, ProjectorConfig
from .read_your_writes import ProjectionWatcher, wait_for_projection
from .replica_reads import ReadTarget, ReplicaReads
from .service import BackgroundService, Signal, backoff
from .stuck_detector import DetectorResult, StuckDetector, StuckDetectorConfig
from .subscriptions import JobChangeSubscription, subscribe_job_changes

__all__ = [
    "Checkpoint", "Difference", "JobChange", "JobRow", "LagSample", "BatchResult", "project_batch",
    "BatchNotice", "JobNotice", "parse_notice", "ProjectionResult", "Projector", "ProjectorConfig",
    "ProjectionWatcher", "wait_for_projection", "ReadTarget", "ReplicaReads", "DetectorResult", "StuckDetector",
    "StuckDetectorConfig",
    "JobChangeSubscription", "subscribe_job_changes", "ChangeFeedHub", "FeedHubConfig", "FeedSubscription",
    "BackgroundService", "Signal", "backoff",
]
