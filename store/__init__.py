"""Everything that speaks SQL: pools and retries, migrations, the event store, errors.

Depends only on statemachine/.
"""

from .errors import TRANSIENT_ERRORS, translate_error
from .events import EventStore, NewEvent, prepare_event
from .ids import new_job_id
from .migrations import discover_migrations, migrate, migration_status
from .models import Event
from .pool import connect, create_pool, retry_idempotent
from .postgres import PostgresHandle, default_data_dir, provide_postgres, with_database

__all__ = [
    "TRANSIENT_ERRORS", "translate_error", "EventStore", "NewEvent", "prepare_event", "new_job_id",
    "discover_migrations", "migrate", "migration_status", "Event", "connect", "create_pool",
    "retry_idempotent", "PostgresHandle", "default_data_dir", "provide_postgres", "with_database",
]
