"""Issue "scheduling": a raw SQL create's priority and run_at keep the payload rules (an end user as a
real role), and a refused one stores nothing."""

from __future__ import annotations

import asyncpg
import pytest

from store.identity import acting_as

CREATE = ('{"original_filename": "a.mp4", "original_filesize": 1, "clip_count": 1, "quality_preset": "pro", '
          '"enhancement_level": "basic", "platform_target": "tiktok"%s}')


@pytest.mark.parametrize("extra", [', "priority": 10', ', "priority": 1.5', ', "priority": "9"',
                                   ', "run_at": "2030-01-01"', ', "run_at": "2030-01-01T00:00:00+01:00"',
                                   ', "run_at": "2030-01-01T23:59:60Z"', ', "run_at": 1893456000'])
async def test_an_end_users_raw_create_with_a_bad_priority_or_run_at_is_refused(user_pool, pool, extra: str) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="rules of create"):
            await conn.fetchrow("SELECT * FROM vjm.append_event(NULL, 'create', $1::text::jsonb, NULL, NULL, NULL, "
                                "'alice', NULL)", CREATE % extra)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


async def test_a_raw_run_at_on_a_day_that_does_not_exist_is_refused_by_the_rules(user_pool, pool) -> None:
    """The pattern lets 2030-02-31 through; the rule casts it (vjm.real_instant), as Python parses it."""
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="rules of create"):
            await conn.fetchrow("SELECT * FROM vjm.append_event(NULL, 'create', $1::text::jsonb, NULL, NULL, NULL, "
                                "'alice', NULL)", CREATE % ', "run_at": "2030-02-31T00:00:00Z"')
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before
