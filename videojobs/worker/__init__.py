"""The processor runtime: `Worker` runs a handler over queued jobs (see runtime.py), on the database or over
the HTTP API (`Worker(api=ApiAccess(url, token))`)."""

from .config import WorkerConfig
from .context import JobContext, JobLost
from .errors import Retry, TransientError
from .job_run import RunResult
from .runtime import Worker, WorkerSignals
from .transport import ApiAccess

__all__ = ["ApiAccess", "Worker", "WorkerConfig", "WorkerSignals", "JobContext", "JobLost", "Retry", "TransientError", "RunResult"]
