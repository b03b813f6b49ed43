"""Logging for applications and the CLI: structlog, quiet by default (store/logs.py configures it)."""

from __future__ import annotations

from store.logs import configure_logging

__all__ = ["configure_logging"]
