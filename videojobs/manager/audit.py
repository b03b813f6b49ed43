"""The audit service: every job's history with actors, searches over all events, past states, tamper evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from statemachine import JobNotFound, Trigger, ValidationError, VJMError
from store import Event, EventStore
from store import audit as tree
from store.audit import EventQuery, find_events, read_stream_until, verify_chain
from store.events import as_uuid
from store.merkle import consistency_ranges, inclusion_ranges
from store.tree_heads import TreeHead, sign_head, signature_ok

from ..models import EventPage, HistoryReport, Job
from .reads import read_on
from .session import Session, fold_to_job


@dataclass(frozen=True, slots=True)
class TreeHeadReport:
    """`verify_tree_head`: is every event up to the head present and unchanged, and is the head signed?"""

    ok: bool
    tree_size: int
    signature_ok: bool
    root_matches: bool
    leaves_checked: int
    archived_leaves: int        # leaves whose events were archived: checked through vjm.audit_leaves only
    key_id: str
    problem: str | None = None  # the first difference, in words
    leaf_index: int | None = None
    position: int | None = None
    job_id: UUID | None = None
    notes: list[str] = field(default_factory=list)


class Audit:
    """history, find_events, job_as_of, verify_history; the audit tree: seal, sign, verify, prove."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def history(self, job_id: UUID | str) -> list[Event]:
        """Every event of the job in order: type, from/to state, actor, time and data (deleted jobs too)."""
        job_id = as_uuid(job_id)
        events = await read_on(self._session, lambda conn: EventStore(conn).read_stream(job_id), models=False)
        if not events:
            raise JobNotFound(job_id)
        return events

    async def find_events(self, *, actor: str | None = None, type: str | None = None,
                          since: datetime | None = None, until: datetime | None = None,
                          user_id: str | None = None, team_id: UUID | str | None = None,
                          job_id: UUID | str | None = None, after: int = 0, limit: int = 100) -> EventPage:
        """Events matching the filters, oldest first; pass `next_cursor` back as `after` for the next page."""
        query = EventQuery(after_position=_position(after), actor=_text(actor, "actor"), type=_trigger(type),
                           since=_aware(since, "since"), until=_aware(until, "until"),
                           user_id=_text(user_id, "user_id"),
                           team_id=as_uuid(team_id, "team_id") if team_id is not None else None,
                           job_id=as_uuid(job_id) if job_id is not None else None, limit=_limit(limit))
        if query.since and query.until and query.since >= query.until:
            raise ValidationError("until must be after since", field="until")
        events = await read_on(self._session, lambda conn: find_events(conn, query), models=False)
        return EventPage(items=events, next_cursor=events[-1].position if len(events) == query.limit else None)

    async def job_as_of(self, job_id: UUID | str, at: datetime) -> Job:
        """The job as it was at instant `at`, replayed from its events."""
        job_id, moment = as_uuid(job_id), _aware(at, "at")
        if moment is None:
            raise ValidationError("at must be a datetime", field="at")
        events = await read_on(self._session, lambda conn: read_stream_until(conn, job_id, moment), models=False)
        return fold_to_job(job_id, None, events)

    async def verify_history(self, job_id: UUID | str | None = None) -> HistoryReport:
        """Recompute the hash chain of one job or of all events; report the first broken link.

        JobNotFound for a job with no events the caller may read: "ok (0 events checked)" would
        pass a job that is not there.
        """
        target = as_uuid(job_id) if job_id is not None else None
        check = await read_on(self._session, lambda conn: verify_chain(conn, target), models=False)
        if target is not None and check.checked == 0:
            raise JobNotFound(target)
        return HistoryReport(ok=check.ok, checked=check.checked, first_broken_job_id=check.broken_job_id,
                             first_broken_version=check.broken_version, reason=check.reason)

    # --- the log-wide audit tree (store/audit.py, store/merkle.py, store/tree_heads.py) ---

    async def seal(self, batch: int = 100_000) -> int:
        """Append the leaves of every committed event (below the horizon) to the tree; the tree size."""
        async with self._session.service_connection() as conn:
            return await tree.seal_all(conn, batch)

    async def sign_tree_head(self, key: Ed25519PrivateKey) -> TreeHead:
        """Seal, recompute the whole tree from the events, and sign its head (kept in vjm.audit_heads too).

        Refuses to sign when the log disagrees with the sealed leaves: a head must never bless damage.
        """
        await self.seal()
        async with self._session.service_connection() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                size, _ = await tree.tree_state(conn)
                recount = await tree.recount_tree(conn, size)
            if recount.problem or recount.root_hash is None:
                raise VJMError(f"will not sign: leaf {recount.leaf_index} (position {recount.position}): "
                               f"{recount.problem}")
            head = sign_head(key, size, recount.root_hash)
            await tree.keep_head(conn, head.tree_size, head.root_hash, head.timestamp, head.key_id,
                                 head.public_key, head.signature)
        return head

    async def verify_tree_head(self, head: TreeHead, public_key: bytes | None = None) -> TreeHeadReport:
        """Recompute the first `head.tree_size` leaves from the stored events, the root from them, and compare.

        Detects an edited, deleted (a job's tail or a whole job), reordered or truncated log; names the
        first leaf that differs from what was sealed when it can.
        """
        signed = signature_ok(head, public_key)
        async with self._session.service_connection() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                recount = await tree.recount_tree(conn, head.tree_size)
        return _head_report(head, recount, signed, pinned=public_key is not None)

    async def latest_tree_head(self) -> TreeHead | None:
        """The newest head kept in the database (trust it for its signature, not for being there)."""
        async with self._session.service_connection() as conn:
            row = await tree.latest_head(conn)
        return TreeHead(row["tree_size"], row["root_hash"], row["timestamp"], row["public_key"],
                        row["signature"]) if row else None

    async def prove_job(self, job_id: UUID | str, head: TreeHead) -> dict[str, Any]:
        """RFC 9162 inclusion proofs of each of the job's events in the tree of `head` (checkable offline)."""
        job_id = as_uuid(job_id)
        async with self._session.service_connection() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                rows = await tree.job_leaves(conn, job_id, head.tree_size)
                if not rows:
                    raise JobNotFound(job_id)
                wanted = {r for row in rows for r in inclusion_ranges(row["leaf_index"], head.tree_size)}
                root, hashes = await tree.subtree_hashes(conn, head.tree_size, wanted)
        if root != head.root_hash:
            raise VJMError("the sealed leaves do not make this head's root: run `vjm audit verify --head`")
        return {"job_id": str(job_id), "tree_size": head.tree_size, "root_hash": head.root_hash.hex(),
                "key_id": head.key_id, "events": [_proved_event(row, hashes, head.tree_size) for row in rows]}

    async def consistency_proof(self, old: TreeHead, new: TreeHead) -> list[bytes]:
        """RFC 9162 §2.1.4 proof that the tree of `new` extends the tree of `old` (from the sealed leaves)."""
        if not 0 < old.tree_size <= new.tree_size:
            raise ValidationError("a consistency proof needs 0 < old tree size <= new tree size", field="head")
        ranges = consistency_ranges(old.tree_size, new.tree_size)
        async with self._session.service_connection() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                root, hashes = await tree.subtree_hashes(conn, new.tree_size, ranges)
        if root != new.root_hash:
            raise VJMError("the sealed leaves do not make the new head's root: run `vjm audit verify --head`")
        return [hashes[r] for r in ranges]


def _head_report(head: TreeHead, recount: Any, signed: bool, *, pinned: bool) -> TreeHeadReport:
    """verify_tree_head's answer from the recount of the log up to the head and the signature check."""
    matches = recount.root_hash == head.root_hash
    notes = []
    if not pinned:
        notes.append(f"the key was not pinned: the head is signed by key {head.key_id}")
    if recount.archived:
        notes.append(f"leaves 0..{recount.archived - 1} were archived: their hashes come from vjm.audit_leaves "
             "(the root covers them); check the archive's own events against them")
    problem = recount.problem
    if matches and problem:
        notes.append(f"the sealed leaves differ from the log ({problem}); the log itself matches the head")
        problem = None
    if not matches and problem is None:
        problem = "the recomputed root differs from the head's root"
    if not signed:
        problem = "the head's signature does not verify" + (" with the pinned key" if pinned else "") + (
        f"; {problem}" if problem else "")
    return TreeHeadReport(ok=signed and matches, tree_size=head.tree_size, signature_ok=signed,
                  root_matches=matches, leaves_checked=recount.leaves, archived_leaves=recount.archived,
                  key_id=head.key_id, problem=problem,
                  leaf_index=None if matches else recount.leaf_index,
                  position=None if matches else recount.position,
                  job_id=None if matches else recount.job_id, notes=notes)


def _proved_event(row: Any, hashes: dict[Any, bytes], tree_size: int) -> dict[str, Any]:
    """One event of prove_job's answer: its leaf, what it says, its hashes and its audit path."""
    return {"leaf_index": row["leaf_index"], "position": row["position"], "version": row["version"],
            "type": row["type"], "from_state": row["from_state"], "to_state": row["to_state"],
            "actor": row["actor"], "occurred_at": row["occurred_at"].isoformat(),
            "prev_hash": row["prev_hash"].hex() if row["prev_hash"] else None, "hash": row["hash"].hex(),
            "audit_path": [hashes[r].hex() for r in inclusion_ranges(row["leaf_index"], tree_size)]}


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a datetime", field=field)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _text(value: str | None, field: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 200):
        raise ValidationError(f"{field} must be 1-200 characters", field=field)
    return value


def _trigger(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return Trigger(value).value
    except ValueError:
        raise ValidationError("type must be an event type", field="type") from None


def _position(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("after must be a non-negative position", field="after")
    return value


def _limit(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValidationError("limit must be an integer from 1 to 1000", field="limit")
    return value
