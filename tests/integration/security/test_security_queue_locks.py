"""Lock squatting on the run queue: a tenant who names another tenant's job locks nothing.

A queue-moving append (cancel, retry, delete, ...) locks the job's run-queue entry before
it reads the head. If that lock were taken before the visibility check, a user could
name someone else's job (ids travel on the vjm_jobs channel) in vjm.append_events, which
reports the refusal as a row instead of raising, keep the transaction open, and claims
would skip that job for as long as they liked. (A refusal that raises aborts the
transaction, and PostgreSQL releases its locks at once.)
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from store.identity import acting_as
from tests.support.factories import create_data
from tests.support.tenants import Tenants, as_user

APPEND_ONE = "SELECT error_code FROM vjm.append_events(ARRAY[$1::uuid], ARRAY[$2], ARRAY['{}'::jsonb], " \
             "ARRAY[NULL::text], ARRAY[NULL::int], ARRAY[NULL::int])"


@pytest.mark.parametrize("trigger", ["cancel", "delete", "update_metadata"])
async def test_a_refused_queue_move_on_another_tenants_job_holds_no_lock(
        tenants: Tenants, user_pool: asyncpg.Pool, processor_pool: asyncpg.Pool, trigger: str) -> None:
    victim = await as_user(user_pool, "alice", "create", create_data(), user_id="alice")  # alice's, no team
    async with acting_as(user_pool, user_id="carol") as mallory:
        assert await mallory.fetchval(APPEND_ONE, victim.job_id, trigger) == "VJ404"
        # Mallory's transaction stays open while a worker claims with SKIP LOCKED: a locked entry
        # would be skipped, so getting alice's job shows that none was locked.
        claimed = await asyncio.wait_for(
            processor_pool.fetch("SELECT job_id FROM vjm.claim_jobs('w-1', 1000)"), timeout=10)
    assert victim.job_id in {r["job_id"] for r in claimed}
