"""Who runs where (`vjm status`): the projector's leader and candidates, and the sessions on the database.

The lease and the candidates are rows the projectors write themselves (sql/schema/050_locks_and_doorbell.sql):
each says which process it is ('host:pid'), its application_name and its client address, which
pg_stat_activity shows only to the session's own login. The sessions are pg_stat_activity's
names and pids, which every role may read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .executor import Executor
from .queries import fetch_all, fetch_optional


@dataclass(frozen=True, slots=True)
class ProjectorLeader:
    """The lease of a projector: its holder (backend pid, process, session name, client) and its times."""

    backend_pid: int | None        # the (last) holder's server pid (None: nobody holds it, it was given up)
    process: str | None            # 'host:pid' of the holder's process
    application_name: str | None
    client_addr: str | None        # None: a Unix socket
    client_port: int | None
    since: datetime | None         # when this holder took it
    renewed_at: datetime | None
    expires_at: datetime | None
    live: bool                     # its backend is connected and it has not expired
    leading_seconds: float | None  # how long it has led (None unless live)


@dataclass(frozen=True, slots=True)
class ProjectorCandidate:
    """A connected session that asks for a projector's lease: the leader or a standby."""

    backend_pid: int
    process: str | None
    application_name: str | None
    client_addr: str | None
    client_port: int | None
    seen_at: datetime
    seen_seconds_ago: float        # since it last checked in (at most every 5 s, as it asks for the lease)
    leading: bool


@dataclass(frozen=True, slots=True)
class SessionGroup:
    """The client sessions on the database with one application_name."""

    application_name: str
    sessions: int
    pids: list[int]


async def projector_leader(executor: Executor, name: str) -> ProjectorLeader | None:
    """The lease of projector `name` (None: no such lease row); needs a role that may read it (vjm_admin)."""
    row = await fetch_optional(executor, "deployment_leader", name=name)
    if row is None:
        return None
    live = bool(row["live"])
    leading = (row["now"] - row["acquired_at"]).total_seconds() if live and row["acquired_at"] else None
    return ProjectorLeader(row["holder_pid"], row["holder_process"],
                           row["holder_application_name"], row["holder_client_addr"], row["holder_client_port"],
                           row["acquired_at"], row["renewed_at"], row["expires_at"], live, leading)


async def projector_candidates(executor: Executor, name: str) -> list[ProjectorCandidate]:
    """The connected candidates of projector `name`, the leader first."""
    rows = await fetch_all(executor, "deployment_candidates", name=name)
    return [ProjectorCandidate(row["backend_pid"], row["process"], row["application_name"], row["client_addr"],
                               row["client_port"], row["seen_at"], row["seen_seconds_ago"], row["leads"])
            for row in rows]


async def session_groups(executor: Executor) -> list[SessionGroup]:
    """The client sessions on this database, by application_name."""
    rows = await fetch_all(executor, "deployment_sessions")
    return [SessionGroup(row["application_name"] or "", row["sessions"], list(row["pids"])) for row in rows]
