"""structlog setup: stable keys, JSON in production, pretty on a TTY."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(level: str | None = None, *, json: bool | None = None) -> None:
    """Configure structlog once. VJM_LOG_LEVEL and VJM_LOG_JSON override the defaults."""
    level_name = (level or os.environ.get("VJM_LOG_LEVEL") or "INFO").upper()
    if json is None:
        env = os.environ.get("VJM_LOG_JSON")
        json = env == "1" if env is not None else not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
