"""vjm_jobs payloads: readers ignore junk; the projector's settings are validated.

The payloads themselves are built by the projector's apply statement (sql/queries/projector_batch.sql):
tests/integration/test_projector_basic.py and test_projector_batch_sql.py check them.
"""

from __future__ import annotations

import pytest

from listeners import ProjectorConfig, parse_notice


def test_junk_is_ignored() -> None:
    assert parse_notice("not json") is None and parse_notice('{"type": "other"}') is None


def test_projector_config_is_validated() -> None:
    assert ProjectorConfig(database_url="postgresql://x").poll_interval == 1.0
    with pytest.raises(ValueError):
        ProjectorConfig(database_url="postgresql://x", batch_size=0)
    with pytest.raises(ValueError):
        ProjectorConfig(database_url="postgresql://x", notify_per_job_limit=51)
