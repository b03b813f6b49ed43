"""vjm application layer: `connect()` gives a VideoJobManager; also configuration, CLI and HTTP API."""

import os as _os

import structlog as _structlog

from statemachine import (
    AccessDenied,
    ConcurrencyConflict,
    DatabaseUnavailable,
    InvalidTransition,
    JobNotFound,
    StaleAttempt,
    ValidationError,
    VJMError,
)

from .config import Settings
from .connect import connect
from .logs import configure_logging as _configure_logging
from .manager import VideoJobManager
from .models import (
    Attempt,
    BulkResult,
    DailyStats,
    HistoryReport,
    Job,
    JobFilters,
    JobPage,
    JobStats,
    PlatformStats,
    Team,
)

__all__ = [
    "connect", "VideoJobManager", "Settings", "Job", "JobPage", "JobFilters", "JobStats", "PlatformStats",
    "DailyStats", "Attempt", "BulkResult", "Team", "HistoryReport", "VJMError", "ValidationError", "JobNotFound",
    "InvalidTransition", "StaleAttempt", "ConcurrencyConflict", "AccessDenied", "DatabaseUnavailable",
]

if not _structlog.is_configured():
    # structlog's own default prints every debug line to stdout; a library should be quiet.
    _configure_logging(_os.environ.get("VJM_LOG_LEVEL", "WARNING"))
