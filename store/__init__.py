"""Everything that speaks SQL: pools and retries, migrations, the event store, errors.

Depends only on statemachine/.
"""

import os as _os

import structlog as _structlog

from .errors import TRANSIENT_ERRORS, translate_error
from .events import EventStore, NewEvent, prepare_event
from .executor import Connection, Executor
from .identity import acting_as, connect_as, create_role_pool, whoami
from .ids import new_job_id
from .logs import configure_logging
from .migrations import discover_migrations, migrate, migration_status
from .models import Event
from .pool import connect, create_pool, retry_idempotent
from .postgres import PostgresHandle, default_data_dir, provide_postgres, with_database, with_user

__all__ = [
    "TRANSIENT_ERRORS", "translate_error", "EventStore", "NewEvent", "prepare_event", "new_job_id",
    "discover_migrations", "migrate", "migration_status", "Event", "connect", "create_pool",
    "retry_idempotent", "PostgresHandle", "default_data_dir", "provide_postgres", "with_database", "with_user",
    "acting_as", "connect_as", "create_role_pool", "whoami", "configure_logging", "Connection", "Executor",
]

if not _structlog.is_configured():
    # structlog's own default prints every debug line to stdout; a library is quiet unless asked
    # (VJM_LOG_LEVEL), and an application that configures structlog itself keeps its own setup.
    configure_logging(_os.environ.get("VJM_LOG_LEVEL", "WARNING"))
