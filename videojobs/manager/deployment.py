"""`vjm status`: which process leads the projector, which stand by, how far the projection is behind,
and who is connected to the database (the maintenance service's `deployment_status()`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from store.deployment import (
    ProjectorCandidate,
    ProjectorLeader,
    SessionGroup,
    projector_candidates,
    projector_leader,
    session_groups,
)

if TYPE_CHECKING:
    from .maintenance import ProjectionStatus

__all__ = ["DeploymentStatus", "ProjectorCandidate", "ProjectorLeader", "SessionGroup", "read_lease_view",
           "session_groups"]


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    """What `vjm status` shows. There is one projection, so one lag: every process reads the same read
    models and the same change feed, whichever of them leads."""

    projection: ProjectionStatus                    # checkpoint, lag, where it is stopped, what holds the horizon
    leader: ProjectorLeader | None                  # None: this role may not read the lease (vjm_admin may)
    candidates: list[ProjectorCandidate] | None     # the leader and the standbys; None as for `leader`
    sessions: list[SessionGroup]                    # the client sessions on the database by application_name

    @property
    def standbys(self) -> list[ProjectorCandidate]:
        """The connected candidates that do not lead: who takes over when the leader goes."""
        return [candidate for candidate in self.candidates or [] if not candidate.leading]


async def read_lease_view(conn: asyncpg.Connection, name: str) -> tuple[ProjectorLeader | None,
                                                                       list[ProjectorCandidate] | None]:
    """The lease and the candidates of projector `name`; (None, None) for a role that may not read them."""
    try:
        async with conn.transaction():  # a refusal must not abort the caller's transaction
            return await projector_leader(conn, name), await projector_candidates(conn, name)
    except asyncpg.InsufficientPrivilegeError:
        return None, None
