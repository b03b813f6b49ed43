"""Everything that speaks SQL: pools and retries, migrations, the event store, errors.

Depends only on statemachine/.
"""

from .errors import TRANSIENT_ERRORS, translate_error
from .events import EventStore, NewEvent, prepare_event
from .identity import acting_as, connect_as, create_role_pool, whoami
from .ids import new_job_id
from .migrations import discover_migrations, migrate, migration_status
from .models import Event
from .pool import connect, create_pool, retry_idempotent
from .postgres import PostgresHandle, default_data_dir, provide_postgres, with_database, with_user

__all__ = [
    "TRANSIENT_ERRORS", "translate_error", "EventStore", "NewEvent", "prepare_event", "new_job_id",
    "discover_migrations", "migrate", "migration_status", "Event", "connect", "create_pool",
    "retry_idempotent", "PostgresHandle", "default_data_dir", "provide_postgres", "with_database", "with_user",
    "acting_as", "connect_as", "create_role_pool", "whoami",
]
