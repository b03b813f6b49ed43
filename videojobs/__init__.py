"""vjm application layer: `connect()` gives a VideoJobManager; also configuration, CLI and HTTP API."""

from .config import Settings
from .connect import application_name, connect
from .errors import (
    AccessDenied,
    ConcurrencyConflict,
    DatabaseUnavailable,
    IdempotencyConflict,
    IdempotencyKeyInUse,
    InvalidTransition,
    JobNotFound,
    StaleAttempt,
    ValidationError,
    VJMError,
)
from .manager import VideoJobManager
from .models import (
    Attempt,
    BulkResult,
    ClaimLatency,
    DailyStats,
    HistoryReport,
    Job,
    JobFilters,
    JobPage,
    JobStats,
    PlatformStats,
    Team,
)
from .worker import JobContext, Retry, TransientError, Worker

__all__ = [
    "connect", "application_name", "VideoJobManager", "Settings", "Job", "JobPage", "JobFilters", "JobStats", "PlatformStats",
    "DailyStats", "ClaimLatency", "Attempt", "BulkResult", "Team", "HistoryReport", "VJMError", "ValidationError", "JobNotFound",
    "InvalidTransition", "StaleAttempt", "ConcurrencyConflict", "AccessDenied", "DatabaseUnavailable",
    "IdempotencyConflict", "IdempotencyKeyInUse", "Worker", "JobContext", "Retry", "TransientError",
]

