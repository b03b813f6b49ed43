"""The processor runtime: `Worker` runs a handler over queued jobs (see runtime.py)."""

from .config import WorkerConfig
from .context import JobContext, JobLost
from .errors import Retry, TransientError
from .job_run import RunResult
from .runtime import Worker, WorkerSignals

__all__ = ["Worker", "WorkerConfig", "WorkerSignals", "JobContext", "JobLost", "Retry", "TransientError", "RunResult"]
