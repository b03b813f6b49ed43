"""Tenant matrix: alice and bob share T1, carol is alone in T2. Every table and view,
read through the catalog, and every store-level read and write, as each user."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from statemachine import AccessDenied, JobNotFound
from store import EventStore, prepare_event
from store.identity import acting_as
from store.teams import TeamNotFound, add_team_member, list_team_members, list_teams, remove_team_member
from store.tokens import LocalTokens
from tests.support.factories import create_data
from tests.support.tenants import USERS, Tenants, as_user
from tests.support.tokens import TEST_JWT_SECRET

REFERENCE_TABLES = {"transitions", "trigger_rules", "job_defaults",  # the same for everyone, no tenant data
                    "payload_chars", "payload_rules", "payload_shapes", "idempotency_settings"}
VIEWERS = [*USERS, None]


async def _relations(conn: asyncpg.Connection) -> list[str]:
    return [r[0] for r in await conn.fetch(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'vjm'::regnamespace"
        " AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1")]


async def _rows_as(pool: asyncpg.Pool, user: str | None, relation: str) -> list[dict] | None:
    """Every row of a relation as this user; None when the role may not read it at all."""
    async with acting_as(pool, user_id=user) as conn:
        try:
            return [dict(r) for r in await conn.fetch(f'SELECT * FROM vjm."{relation}"')]
        except asyncpg.InsufficientPrivilegeError:
            return None


def _allowed(row: dict, user: str | None, tenants: Tenants) -> bool:
    if user is None:
        return False
    if "job_id" in row:
        return row["job_id"] in tenants.visible_to(user)
    teams = tenants.teams_of(user)
    return row.get("user_id") == user or row.get("team_id") in teams or row.get("owner_id") == user


@pytest.mark.parametrize("user", VIEWERS)
async def test_every_relation_shows_only_allowed_rows(user, tenants: Tenants, user_pool, pool) -> None:
    for relation in await _relations(pool):
        rows = await _rows_as(user_pool, user, relation)
        if rows is None or relation in REFERENCE_TABLES:
            continue
        leaked = [r for r in rows if not _allowed(r, user, tenants)]
        assert not leaked, f"{relation} shows {user} rows of others: {leaked[:2]}"
        if user is None:
            assert rows == [], relation


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("relation", ["jobs", "job_events", "job_changes"])
async def test_job_tables_show_exactly_the_visible_jobs(user, relation, tenants: Tenants, user_pool) -> None:
    rows = await _rows_as(user_pool, user, relation)
    assert {r["job_id"] for r in rows} == tenants.visible_to(user)


@pytest.mark.parametrize("user", USERS)
async def test_stats_rows_are_the_users_and_their_teams(user, tenants: Tenants, user_pool) -> None:
    for relation in ("job_stats", "job_stats_daily"):
        rows = await _rows_as(user_pool, user, relation)
        scopes = {(r["scope"], r["scope_id"]) for r in rows}
        expected = ({("user", user)} | {("team", str(t)) for t in tenants.teams_of(user)}
                    | {("member", f"{team}:{owner}") for owner, team in tenants.jobs.values()
                       if team in tenants.teams_of(user)})  # a team's jobs per owner, to its members only
        assert {s for s in scopes if s[0] == "user"} == {("user", user)}, relation
        assert scopes <= expected, relation


@pytest.mark.parametrize("user", USERS)
async def test_teams_and_members_are_visible_to_members_only(user, tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id=user) as conn:
        teams = {t.team_id for t in await list_teams(conn)}
        members = {m.user_id for t in tenants.teams_of(user) for m in await list_team_members(conn, t)}
        foreign = [m for t in {tenants.team1, tenants.team2} - tenants.teams_of(user)
                   for m in await list_team_members(conn, t)]
    assert teams == tenants.teams_of(user)
    assert members == ({"alice", "bob"} if user != "carol" else {"carol"})
    assert foreign == []


@pytest.mark.parametrize("user", [*USERS, None])
async def test_store_reads_return_only_visible_jobs(user, tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id=user) as conn:
        store = EventStore(conn)
        for job_id in tenants.jobs:
            stream, head = await store.read_stream(job_id), await store.read_head(job_id)
            assert bool(stream) == (job_id in tenants.visible_to(user))
            assert (head is not None) == (job_id in tenants.visible_to(user))
        after = {e.job_id for e in await store.read_after((0, 0), limit=1000)}
    assert after <= tenants.visible_to(user)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("trigger,data", [("cancel", {}), ("retry", {}), ("delete", {}),
                                          ("update_metadata", {"clip_count": 2})])
async def test_writes_to_invisible_jobs_are_not_found(user, trigger, data, tenants: Tenants, user_pool, pool) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    for job_id in tenants.hidden_from(user):
        with pytest.raises(JobNotFound):
            await as_user(user_pool, user, trigger, data, job_id=job_id)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


@pytest.mark.parametrize("trigger,data", [("start", {}), ("progress", {"percent": 1}), ("time_out", {}),
                                          ("complete", {"output_paths": []}), ("fail", {"error": "x"})])
async def test_processor_triggers_on_own_job_are_access_denied(trigger, data, tenants: Tenants, user_pool,
                                                               pool) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    for job_id in tenants.visible_to("alice"):
        with pytest.raises(AccessDenied):
            await as_user(user_pool, "alice", trigger, data, job_id=job_id)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before


async def test_team_member_may_act_on_team_jobs_and_is_recorded_as_themselves(tenants: Tenants, user_pool) -> None:
    alices_team_job = next(j for j, (u, t) in tenants.jobs.items() if u == "alice" and t == tenants.team1)
    event = await as_user(user_pool, "bob", "retry", {}, job_id=alices_team_job, actor="alice")
    assert (event.actor, event.user_id, event.to_state) == ("bob", "alice", "queued")


async def test_creates_are_for_yourself_in_your_teams_and_recorded_as_you(tenants: Tenants, user_pool, pool) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    for user_id, team_id in (("bob", None), ("bob", tenants.team1), ("alice", tenants.team2),
                             ("carol", tenants.team2)):
        with pytest.raises(AccessDenied):
            await as_user(user_pool, "alice", "create", create_data(), user_id=user_id, team_id=team_id)
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before
    mine = await as_user(user_pool, "alice", "create", create_data(), user_id="alice", team_id=tenants.team1,
                         actor="carol")
    assert (mine.actor, mine.user_id, mine.team_id) == ("alice", "alice", tenants.team1)
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(AccessDenied):
            await EventStore(conn).append_creates([prepare_event("create", create_data(), user_id="carol")])


async def test_nobody_creates_without_an_identity(tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id=None) as conn:
        with pytest.raises(AccessDenied):
            await EventStore(conn).append(prepare_event("create", create_data(), user_id="alice"))


@pytest.mark.parametrize("statement", [
    "UPDATE vjm.jobs SET status = 'completed'",
    "DELETE FROM vjm.jobs",
    "INSERT INTO vjm.job_stats (scope, scope_id, user_id) VALUES ('user', 'alice', 'alice')",
    "UPDATE vjm.projection_checkpoints SET position = 0",
    "INSERT INTO vjm.job_events (job_id, version, type, to_state, attempt, attempts_left, actor, user_id, hash)"
    " VALUES (gen_random_uuid(), 1, 'create', 'queued', 0, 3, 'a', 'alice', '\\x00')",
])
async def test_users_cannot_write_tables_directly(statement, tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)


async def test_users_cannot_change_other_tenants_teams(tenants: Tenants, user_pool, pool) -> None:
    for statement in ("UPDATE vjm.teams SET name = 'mine' WHERE team_id = $1",
                      "DELETE FROM vjm.teams WHERE team_id = $1", "DELETE FROM vjm.team_members WHERE team_id = $1"):
        async with acting_as(user_pool, user_id="alice") as conn:  # no table write privilege at all now
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, tenants.team2)
    async with acting_as(user_pool, user_id="alice") as conn:
        assert not await remove_team_member(conn, tenants.team2, "carol")
    # A member who does not own the team is denied; a team the caller cannot see is not found.
    for user, team, error in (("alice", tenants.team2, TeamNotFound), ("bob", tenants.team1, AccessDenied),
                              ("bob", tenants.team2, TeamNotFound)):
        async with acting_as(user_pool, user_id=user) as conn:
            with pytest.raises(error):
                await add_team_member(conn, team, "bob" if user == "alice" else "mallory")
    assert await pool.fetchval("SELECT count(*) FROM vjm.team_members") == 3


async def test_membership_changes_apply_to_the_next_transaction(tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id="alice") as conn:
        assert await remove_team_member(conn, tenants.team1, "bob")
    async with acting_as(user_pool, user_id="bob") as conn:
        seen = {r["job_id"] for r in await conn.fetch("SELECT job_id FROM vjm.jobs")}
    assert seen == {j for j, (u, _) in tenants.jobs.items() if u == "bob"}
    async with acting_as(user_pool, user_id="alice") as conn:
        await add_team_member(conn, tenants.team1, "bob")
    async with acting_as(user_pool, user_id="bob") as conn:
        assert {r["job_id"] for r in await conn.fetch("SELECT job_id FROM vjm.jobs")} == tenants.visible_to("bob")


async def test_a_member_may_leave_a_team(tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id="bob") as conn:
        assert await remove_team_member(conn, tenants.team1, "bob")
        assert await list_teams(conn) == []


async def test_processor_reads_every_job_but_no_tenant_metadata_tables(tenants: Tenants, processor_pool) -> None:
    assert {r[0] for r in await processor_pool.fetch("SELECT job_id FROM vjm.jobs")} == set(tenants.jobs)
    # The change feed carries ids and states only, which processors read in vjm.jobs anyway
    # (011_processor_change_feed.sql: a service's event stream reads it as vjm_processor).
    await processor_pool.fetch("SELECT seq, job_id, status FROM vjm.job_changes")
    for table in ("teams", "team_members", "job_stats"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await processor_pool.fetch(f"SELECT * FROM vjm.{table}")


async def test_admin_sees_and_may_do_everything(tenants: Tenants, pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE vjm_admin")
        assert {r[0] for r in await conn.fetch("SELECT job_id FROM vjm.jobs")} == set(tenants.jobs)
        assert await conn.fetchval("SELECT count(*) FROM vjm.team_members") == 3
        job = await EventStore(conn).append(prepare_event("create", create_data(), user_id="zed",
                                                          job_id=uuid.uuid4()))
        started = await EventStore(conn).append(prepare_event("start", {}, job_id=job.job_id))
        assert started.to_state == "processing"


async def test_a_role_inheriting_authenticated_gets_the_user_rules(tenants: Tenants, pool) -> None:
    # Supabase: PostgREST switches to its own `authenticated` role, which is granted vjm_authenticated.
    role = f"vjm_test_inherit_{uuid.uuid4().hex[:8]}"
    await pool.execute(f'CREATE ROLE "{role}" NOLOGIN INHERIT; GRANT vjm_authenticated TO "{role}"')
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(f'SET LOCAL ROLE "{role}"')
            # PostgREST passes the caller's bearer token in request.headers; the database verifies it.
            await conn.execute("SELECT set_config('request.headers', $1, true)",
                               json.dumps({"authorization": f"Bearer {await LocalTokens(TEST_JWT_SECRET).token_for('carol')}"}))
            assert await conn.fetchval("SELECT vjm.caller_kind()") == "user"
            assert {r[0] for r in await conn.fetch("SELECT job_id FROM vjm.jobs")} == tenants.visible_to("carol")
            job = next(iter(tenants.visible_to("carol")))
            event = await EventStore(conn).append(prepare_event("update_metadata", {"clip_count": 9}, job_id=job,
                                                                actor="mallory"))
            assert event.actor == "carol"
            with pytest.raises(AccessDenied):
                await EventStore(conn).append(prepare_event("start", {}, job_id=job))
    finally:
        await pool.execute(f'DROP ROLE "{role}"')
