"""End users' creates, combined per token (store.write_combiner on the end users' pool, vjm_entry.append_create_batch):
one user's concurrent creates share a statement and a commit; two users' never share a transaction; each caller
gets its own job or its own refusal."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import asyncpg
import pytest

from statemachine import AccessDenied, JobNotFound
from store import prepare_event
from store.errors import InvalidToken
from store.write_combiner import WriteCombiner
from tests.support.factories import create_data
from tests.support.tenants import Tenants
from tests.support.tokens import AUDIENCE, token
from videojobs.http.auth import mint_token

USERS = ("alice", "bob", "carol")


def _create(user: str, **ids):
    return prepare_event("create", create_data(), user_id=user, actor=user, **ids)


async def _transactions_of(database_url: str, job_ids) -> dict[int, set[str]]:
    """Each transaction that wrote one of `job_ids`: the users whose creates it holds."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT xact_id::text::bigint AS x, user_id FROM vjm.job_events"
                                " WHERE job_id = ANY($1::uuid[])", list(job_ids))
    finally:
        await conn.close()
    users: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        users[row["x"]].add(row["user_id"])
    return users


async def test_each_users_creates_share_rounds_and_never_another_users(
        tenants: Tenants, user_pool: asyncpg.Pool, database_url: str) -> None:
    combiner = WriteCombiner(user_pool)
    tokens = {user: token(user) for user in USERS}
    callers = [USERS[i % 3] for i in range(36)]
    created = await asyncio.gather(*(combiner.append(_create(user), token=tokens[user]) for user in callers))
    assert [(e.user_id, e.actor) for e in created] == [(user, user) for user in callers]  # each caller its own
    assert len({e.job_id for e in created}) == 36
    transactions = await _transactions_of(database_url, [e.job_id for e in created])
    assert sum(len(t) for t in transactions.values()) == len(transactions)  # one user per transaction
    assert max(sum(1 for e in created if e.xact_id == x) for x in {e.xact_id for e in created}) > 1  # combined
    assert combiner.rounds_run < 36


async def test_a_refused_create_fails_its_caller_only(tenants: Tenants, user_pool: asyncpg.Pool) -> None:
    combiner = WriteCombiner(user_pool)
    alice = token("alice")
    outcomes = await asyncio.gather(
        combiner.append(_create("alice"), token=alice),
        combiner.append(_create("alice", team_id=tenants.team2), token=alice),  # carol's team
        combiner.append(_create("alice", team_id=tenants.team1), token=alice),
        combiner.append(_create("bob"), token=alice),  # another user's
        combiner.append(_create("alice"), token=alice),
        return_exceptions=True)
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds[0] == kinds[2] == kinds[4] == "Event", kinds
    assert isinstance(outcomes[1], (AccessDenied, JobNotFound)) and isinstance(outcomes[3], AccessDenied), kinds
    assert outcomes[2].team_id == tenants.team1


async def test_a_forged_token_fails_only_its_own_creates(tenants: Tenants, user_pool: asyncpg.Pool,
                                                         database_url: str) -> None:
    combiner = WriteCombiner(user_pool)
    forged, alice = mint_token("f" * 40, sub="alice", audience=AUDIENCE), token("alice")
    outcomes = await asyncio.gather(*(combiner.append(_create("alice"), token=forged if i % 2 else alice)
                                      for i in range(10)), return_exceptions=True)
    assert all(isinstance(o, InvalidToken) for o in outcomes[1::2])
    assert all(type(o).__name__ == "Event" and o.user_id == "alice" for o in outcomes[::2])
    written = await _transactions_of(database_url, [o.job_id for o in outcomes[::2]])
    assert written and all(users == {"alice"} for users in written.values())


async def test_an_end_users_transitions_are_not_combined(user_pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="creates only"):
        await WriteCombiner(user_pool).append(prepare_event("cancel", {"reason": "x"}, job_id="0" * 32),
                                              token=token("alice"))


@pytest.mark.parametrize("combining", [True, False])
async def test_an_end_users_concurrent_creates_through_the_manager(database_url: str, combining: bool) -> None:
    from videojobs import Settings, connect

    settings = Settings(database_url=database_url, pool_size=1, write_combining=combining)
    async with connect(settings=settings, listeners=False) as manager:
        sent: list[str] = []
        async with manager._session.runtime.user_pool.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
        dana = manager.as_user("dana")
        jobs = await asyncio.gather(*(dana.create_job(user_id="dana", **create_data()) for _ in range(16)))
    assert len({j.job_id for j in jobs}) == 16 and {j.user_id for j in jobs} == {"dana"}
    writes = [q for q in sent if "jit" not in q and "typeinfo_tree" not in q]  # not asyncpg's type introspection
    batched = [q for q in writes if "vjm_entry.append_create_batch" in q]
    assert bool(batched) is combining and (combining or len(writes) == 16)
    assert all("vjm_entry." in q for q in writes), writes  # one statement each: no BEGIN, set_config or COMMIT
