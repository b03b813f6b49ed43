"""The job state machine: states, triggers, guards, payloads and the error hierarchy.

Imports no database driver and nothing from the other vjm packages.
"""

from .check import check_attempt, is_allowed, next_state
from .errors import (
    AccessDenied,
    ConcurrencyConflict,
    DatabaseUnavailable,
    InvalidTransition,
    JobNotFound,
    MigrationError,
    StaleAttempt,
    ValidationError,
    VJMError,
)
from .machine import (
    ALLOWED_TRIGGERS,
    FENCED_TRIGGERS,
    LIVE_STATES,
    PROCESSOR_TRIGGERS,
    RULES,
    TERMINAL_STATES,
    TRANSITIONS,
    USER_TRIGGERS,
    Guard,
    Rule,
    State,
    Trigger,
    build_machine,
)
from .payloads import (
    PAYLOADS,
    CompleteData,
    CreateData,
    EnhancementLevel,
    FailData,
    MetadataData,
    Payload,
    Platform,
    ProgressData,
    QualityPreset,
    ReasonData,
    StartData,
    TimeOutData,
    to_validation_error,
    validate_payload,
)

__all__ = [name for name in dir() if not name.startswith("_")]
