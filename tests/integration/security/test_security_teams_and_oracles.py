"""Issue 15, findings 2, 3 and 5: team takeover, lock squatting on team tables, existence oracles.

Real roles, raw SQL where an attacker would use it: teams are written only through definer
functions, the database issues team and job ids, a deleted team's id is never issued again,
no tenant holds a table privilege that lets it LOCK, and "not visible" answers as "missing".
"""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from statemachine import AccessDenied, ConcurrencyConflict
from store import EventStore, prepare_event
from store.identity import acting_as
from store.teams import TeamNotFound, add_team_member, create_team, delete_team, list_teams
from tests.support.factories import create_data
from tests.support.projections import project_all
from tests.support.tenants import Tenants, as_user

# Every privilege that lets a role LOCK a table in a mode above ACCESS SHARE, lock its rows
# (SELECT ... FOR UPDATE/SHARE), or take locks on it through DDL (REFERENCES, TRIGGER).
TABLE_WRITERS = """
SELECT r.rolname || ' ' || priv || ' ' || c.oid::regclass::text
  FROM pg_roles r, pg_class c, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) priv
 WHERE r.rolname = ANY ($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
   AND c.relnamespace::regnamespace::text NOT LIKE 'pg_toast%'
   AND has_table_privilege(r.oid, c.oid, priv)
 ORDER BY 1
"""
TENANT_ROLES = ["vjm_authenticated", "vjm_processor", "vjm_app"]  # vjm_admin is maintenance, trusted
SCANS = """
SELECT relname, seq_scan, coalesce(idx_scan, 0) AS idx_scan FROM pg_stat_xact_user_tables WHERE schemaname = 'vjm'
"""


async def test_no_tenant_role_holds_a_table_write_or_lock_privilege(pool) -> None:
    assert await pool.fetch(TABLE_WRITERS, TENANT_ROLES) == []
    admin = {r[0].split(" ")[2] for r in await pool.fetch(TABLE_WRITERS, ["vjm_admin"])}
    assert not admin & {"vjm.teams", "vjm.team_members", "vjm.job_events"}  # admins go through the functions too
    # The projector writes its read models and its lease, and nothing else.
    written = {r[0].split(" ")[2] for r in await pool.fetch(TABLE_WRITERS, ["vjm_projector"])}
    assert "vjm.job_events" not in written and not written & {"vjm.teams", "vjm.team_members", "vjm.run_queue"}


async def test_the_audit_sees_a_careless_grant(pool) -> None:
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("GRANT UPDATE ON vjm.team_members TO vjm_authenticated")
            assert [r[0] for r in await conn.fetch(TABLE_WRITERS, TENANT_ROLES)] == [
                "vjm_authenticated UPDATE vjm.team_members"]
        finally:
            await tx.rollback()


@pytest.mark.parametrize("statement", [
    "LOCK TABLE vjm.team_members IN ACCESS EXCLUSIVE MODE",
    "LOCK TABLE vjm.teams IN SHARE MODE",
    "SELECT * FROM vjm.team_members FOR UPDATE",
    "SELECT * FROM vjm.teams FOR KEY SHARE",
])
async def test_a_tenant_cannot_lock_the_team_tables(statement, tenants: Tenants, user_pool) -> None:
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)


async def test_a_deleted_teams_id_is_never_issued_again_nor_taken_over(tenants: Tenants, user_pool, pool,
                                                                         database_url) -> None:
    async with acting_as(user_pool, user_id="bob") as conn:
        team = await create_team(conn, "bobs", owner_id="bob")
    job = await as_user(user_pool, "bob", "create", create_data(), user_id="bob", team_id=team.team_id)
    await as_user(user_pool, "bob", "delete", {}, job_id=job.job_id)
    async with acting_as(user_pool, user_id="bob") as conn:
        deleted = await delete_team(conn, team.team_id)
    assert deleted.team_id == team.team_id
    await project_all(database_url)
    old = team.team_id
    # Alice, as raw SQL, tries to re-create the team under its old id and join it.
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO vjm.teams (team_id, name, owner_id) VALUES ($1, 'mine', 'alice')", old)
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO vjm.team_members (team_id, user_id) VALUES ($1, 'alice')", old)
    async with acting_as(user_pool, user_id="alice") as conn:
        with pytest.raises(asyncpg.UndefinedFunctionError):  # no function takes a team id to create
            await conn.fetch("SELECT * FROM vjm.create_team('mine', 'alice', $1::uuid)", old)
    for who in ("alice", "bob"):  # nobody can join a deleted team, not even its owner
        async with acting_as(user_pool, user_id=who) as conn:
            with pytest.raises(TeamNotFound):
                await add_team_member(conn, old, who)
    async with acting_as(user_pool, user_id="alice") as conn:
        fresh = await create_team(conn, "mine", owner_id="alice")
        assert fresh.team_id != old
        assert await conn.fetch("SELECT job_id FROM vjm.jobs WHERE team_id = $1", old) == []
        assert await conn.fetch("SELECT job_id FROM vjm.job_events WHERE team_id = $1", old) == []
        assert old not in {t.team_id for t in await list_teams(conn)}
    async with acting_as(user_pool, user_id="bob") as conn:  # gone for its owner too, whose events stay his
        assert old not in {t.team_id for t in await list_teams(conn)}
        assert {r[0] for r in await conn.fetch("SELECT job_id FROM vjm.job_events WHERE team_id = $1", old)} == {
            job.job_id}
    async with pool.acquire() as conn:  # the row stays, marked deleted, so its id stays taken
        row = await conn.fetchrow("SELECT deleted_at, (SELECT count(*) FROM vjm.team_members m WHERE m.team_id = $1)"
                                  " AS members FROM vjm.teams WHERE team_id = $1", old)
    assert row["deleted_at"] is not None and row["members"] == 0


async def test_a_team_with_jobs_that_are_not_deleted_cannot_be_deleted(tenants: Tenants, user_pool, pool,
                                                                       database_url) -> None:
    async with acting_as(user_pool, user_id="carol") as conn:
        team = await create_team(conn, "busy", owner_id="carol")
        await add_team_member(conn, team.team_id, "dave")
    job = await as_user(user_pool, "dave", "create", create_data(), user_id="dave", team_id=team.team_id)
    async with acting_as(user_pool, user_id="dave") as conn:  # a member, not the owner
        with pytest.raises(AccessDenied):
            await delete_team(conn, team.team_id)
    async with acting_as(user_pool, user_id="alice") as conn:  # not even visible
        with pytest.raises(TeamNotFound):
            await delete_team(conn, team.team_id)
    async with acting_as(user_pool, user_id="carol") as conn:
        with pytest.raises(ConcurrencyConflict, match="still has jobs"):
            await delete_team(conn, team.team_id)
    async with acting_as(user_pool, user_id="dave") as conn:  # the refusal changed nothing
        assert team.team_id in {t.team_id for t in await list_teams(conn)}
    await as_user(user_pool, "dave", "delete", {}, job_id=job.job_id)
    async with acting_as(user_pool, user_id="carol") as conn:
        await delete_team(conn, team.team_id)
    async with acting_as(user_pool, user_id="dave") as conn:
        assert team.team_id not in {t.team_id for t in await list_teams(conn)}
        with pytest.raises(AccessDenied):  # a deleted team takes no new jobs
            await EventStore(conn).append(prepare_event("create", create_data(), user_id="dave",
                                                        team_id=team.team_id))
    await project_all(database_url)


async def test_no_caller_creates_a_job_in_a_team_that_does_not_exist(tenants: Tenants, pool, database_url) -> None:
    before = await pool.fetchval("SELECT count(*) FROM vjm.job_events")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE vjm_admin")
        with pytest.raises(AccessDenied):  # else the projector's foreign key would refuse the job's row forever
            await EventStore(conn).append(prepare_event("create", create_data(), user_id="zed",
                                                        team_id=uuid.uuid4()))
    assert await pool.fetchval("SELECT count(*) FROM vjm.job_events") == before
    assert await pool.fetchval("SELECT count(*) FROM pg_constraint WHERE conrelid = 'vjm.jobs'::regclass"
                               " AND contype = 'f' AND confrelid = 'vjm.teams'::regclass") == 1
    await project_all(database_url)


async def test_team_ids_are_issued_by_the_database_and_time_ordered(user_pool) -> None:
    async with acting_as(user_pool, user_id="erin") as conn:
        first = await create_team(conn, "one", owner_id="erin")
        second = await create_team(conn, "two", owner_id="erin")
        with pytest.raises(AccessDenied):
            await create_team(conn, "theirs", owner_id="frank")
    # UUIDv7: the first 48 bits are the issuing millisecond; two ids of the same millisecond differ in
    # their random bits, in either order (RFC 9562 leaves sub-millisecond order to the generator).
    assert first.team_id.version == 7 and second.team_id.version == 7
    assert first.team_id.int >> 80 <= second.team_id.int >> 80
    assert abs((first.team_id.int >> 80) / 1000 - first.created_at.timestamp()) < 60


async def test_an_end_user_cannot_choose_a_job_id(tenants: Tenants, user_pool) -> None:
    bobs = next(j for j, (u, _) in tenants.jobs.items() if u == "bob")
    errors = []
    for job_id in (bobs, uuid.uuid4()):  # someone else's id, and a free one: the same answer
        async with acting_as(user_pool, user_id="alice") as conn:
            with pytest.raises(asyncpg.InvalidParameterValueError) as caught:
                await conn.fetchrow("SELECT * FROM vjm.append_event($1, 'create', $2, NULL, NULL, NULL, 'alice')",
                                    job_id, create_data())
            errors.append((caught.value.sqlstate, caught.value.args[0]))
        async with acting_as(user_pool, user_id="alice") as conn:
            with pytest.raises(asyncpg.InvalidParameterValueError):
                await conn.fetch("SELECT * FROM vjm.append_create_batch($1, $2::jsonb, $3, $4, $5)", [job_id],
                                 [create_data()], [None], ["alice"], [None])
    assert errors[0] == errors[1]
    async with acting_as(user_pool, user_id="alice") as conn:
        row = await conn.fetchrow("SELECT * FROM vjm.append_event(NULL, 'create', $1, NULL, NULL, NULL, 'alice')",
                                  create_data())
        made = await conn.fetch("SELECT * FROM vjm.append_creates($1, $2, $3, $4, $5)", [None, None],
                                [create_data(clip_count=1), create_data(clip_count=2)], [None, None],
                                ["alice", "alice"], [None, None])
    assert row["job_id"].version == 7 and row["user_id"] == "alice"
    assert [r["data"]["clip_count"] for r in made] == [1, 2] and len({r["job_id"] for r in made}) == 2


async def test_a_trusted_caller_may_still_name_a_job_id(pool) -> None:
    job_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE vjm_admin")
        stored = await EventStore(conn).append(prepare_event("create", create_data(), user_id="zed", job_id=job_id))
    assert stored.job_id == job_id


async def _refusal(conn: asyncpg.Connection, job_id: uuid.UUID) -> tuple[str, str, dict[str, tuple[int, int]]]:
    """The error of an update_metadata on `job_id`, and how many scans of each table it took."""
    before = {r["relname"]: (r["seq_scan"], r["idx_scan"]) for r in await conn.fetch(SCANS)}
    await conn.execute("SAVEPOINT probe")
    with pytest.raises(asyncpg.PostgresError) as caught:
        await conn.fetchrow("SELECT * FROM vjm.append_event($1, 'update_metadata', '{\"clip_count\": 2}')", job_id)
    await conn.execute("ROLLBACK TO SAVEPOINT probe")
    after = {r["relname"]: (r["seq_scan"], r["idx_scan"]) for r in await conn.fetch(SCANS)}
    scans = {name: (s - before.get(name, (0, 0))[0], i - before.get(name, (0, 0))[1])
             for name, (s, i) in after.items() if (s, i) != before.get(name, (0, 0))}
    return caught.value.sqlstate, caught.value.args[0].replace(str(job_id), "<id>"), scans


@pytest.mark.parametrize("hidden_owner", ["bob-personal", "carol-team"])
async def test_an_invisible_job_and_a_missing_one_are_refused_alike(hidden_owner, tenants: Tenants, user_pool,
                                                                    pool) -> None:
    user, in_team = hidden_owner.split("-")
    hidden = next(j for j, (u, t) in tenants.jobs.items() if u == user and (t is not None) == (in_team == "team"))
    assert hidden in tenants.hidden_from("alice")
    results = {}
    for name, job_id in (("hidden", hidden), ("missing", uuid.uuid4())):
        # One connection each, in a transaction of its own: pg_stat_xact_* counts this transaction only.
        async with acting_as(user_pool, user_id="alice") as conn:
            for _ in range(2):  # warm the session's plans, then measure
                results[name] = await _refusal(conn, job_id)
    assert results["hidden"][:2] == results["missing"][:2] == ("VJ404", "job <id> not found")
    assert results["hidden"][2] == results["missing"][2], results  # the same tables, scanned as often
    assert "team_members" in results["missing"][2], "visibility is evaluated for a missing job too"
