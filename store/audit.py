"""Audit reads over the event log: search, history as of an instant, hash-chain verification, the audit tree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from asyncpg import Record

from .executor import Connection, Executor
from .merkle import Range, SubtreeCollector, TreeBuilder, leaf_hash
from .models import Event, event_from_row
from .queries import execute, fetch_all, fetch_one, fetch_optional, fetch_value


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of an audit search; None means "any". Keyset by position."""

    after_position: int = 0
    actor: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    user_id: str | None = None
    team_id: UUID | None = None
    job_id: UUID | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Result of recomputing the hash chain: how many events, and the first broken one."""

    checked: int
    broken_job_id: UUID | None = None
    broken_version: int | None = None
    broken_position: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_position is None


async def find_events(executor: Executor, query: EventQuery) -> list[Event]:
    """Events after `query.after_position` that match the filters, oldest first."""
    rows = await fetch_all(executor, "event_find_page", after_position=query.after_position, actor=query.actor,
                           type=query.type, since=query.since, until=query.until, user_id=query.user_id,
                           team_id=query.team_id, job_id=query.job_id, limit=query.limit)
    return [event_from_row(r) for r in rows]


async def read_stream_until(executor: Executor, job_id: UUID, at: datetime) -> list[Event]:
    """One job's events that happened at or before `at`, in version order."""
    rows = await fetch_all(executor, "event_get_stream_until", job_id=job_id, at=at)
    return [event_from_row(r) for r in rows]


async def verify_chain(executor: Executor, job_id: UUID | None = None) -> ChainCheck:
    """Recompute every event's hash and link; report the first broken event by position."""
    row = await fetch_one(executor, "event_verify_chain", job_id=job_id)
    if row["position"] is None:
        return ChainCheck(checked=row["checked"])
    reason = ("content does not match its hash" if not row["hash_ok"]
              else "previous-hash link is broken" if not row["link_ok"] else "version sequence has a gap")
    return ChainCheck(checked=row["checked"], broken_job_id=row["job_id"], broken_version=row["version"],
                      broken_position=row["position"], reason=reason)


async def last_cursor(executor: Executor) -> tuple[int, int] | None:
    """(xact_id, position) of the newest event the caller can see, or None for an empty log."""
    row = await fetch_optional(executor, "event_get_last_cursor")
    return (row["xact_id"], row["position"]) if row else None


# --- the log-wide audit tree (sql/schema/075_audit_tree.sql, store/merkle.py) ---

PAGE = 5000  # events or leaves per page: memory stays bounded whatever the log's size


async def seal(executor: Executor, max_leaves: int = 100_000) -> int:
    """Append the leaves of committed events (below the horizon) in commit order; the new tree size."""
    return int(await fetch_value(executor, "audit_seal", max_leaves=max_leaves))


async def seal_all(executor: Executor, batch: int = 100_000) -> int:
    """Seal until nothing committed below the horizon is left unsealed; the tree size."""
    before, _ = await tree_state(executor)
    while True:
        size = await seal(executor, batch)
        if size - before < batch:
            return size
        before = size


async def tree_state(executor: Executor) -> tuple[int, int]:
    """(sealed tree size, archive boundary: leaves below it may have no event in the log any more)."""
    row = await fetch_one(executor, "audit_tree_state")
    return row["tree_size"], row["archived_below"]


async def stream_leaf_hashes(executor: Executor, start: int, end: int, page: int = PAGE) -> AsyncIterator[bytes]:
    """The sealed leaf hashes [start, end) in order, a page at a time; raises on a gap."""
    expected = start
    while expected < end:
        rows = await fetch_all(executor, "audit_leaf_hashes", start_index=expected, end_index=min(end, expected + page))
        if not rows:
            raise LeafMissing(expected)
        for row in rows:
            if row["leaf_index"] != expected:
                raise LeafMissing(expected)
            yield row["leaf_hash"]
            expected += 1


class LeafMissing(Exception):
    """A sealed leaf the tree needs is not in vjm.audit_leaves."""

    def __init__(self, index: int) -> None:
        super().__init__(f"leaf {index} is not in vjm.audit_leaves")
        self.index = index


@dataclass(frozen=True, slots=True)
class TreeRecount:
    """The tree recomputed from the log for `tree_size` leaves, and the first problem seen."""

    tree_size: int
    leaves: int                 # leaves recomputed (tree_size unless the log is short)
    archived: int               # of which taken from vjm.audit_leaves (events archived)
    root_hash: bytes | None     # None when the log is too short to make the tree
    problem: str | None = None  # the first difference from the sealed tree, in words
    leaf_index: int | None = None
    position: int | None = None
    job_id: UUID | None = None


async def recount_tree(conn: Connection, tree_size: int, page: int = PAGE) -> TreeRecount:
    """Recompute the first `tree_size` leaves from the events themselves and the root over them.

    Each live event's leaf is SHA-256(0x00 || vjm.event_hash(its content)), in commit order: an
    edit, a deletion, a reordering or a truncation changes the root. Leaves below the archive
    boundary come from vjm.audit_leaves (their events are gone; the signed root still covers
    them). The sealed leaves also name the first difference (which leaf, which position) --
    a hint only: the verdict is the root. Run it in one REPEATABLE READ transaction.
    """
    _, archived_below = await tree_state(conn)
    archived = min(archived_below, tree_size)
    recount = _Recount(conn, tree_size)
    if not await recount.add_archived(archived, page):
        return recount.result(archived=recount.builder.size, root=None)
    await recount.add_live(archived, page)
    if recount.builder.size < tree_size:
        await recount.note_truncated()
        return recount.result(archived=archived, root=None)
    return recount.result(archived=archived, root=recount.builder.root())


class _Recount:
    """The leaves recomputed so far, and the first difference from the sealed tree."""

    def __init__(self, conn: Connection, tree_size: int) -> None:
        self.conn, self.tree_size = conn, tree_size
        self.builder = TreeBuilder()
        self.first: dict[str, Any] = {}

    def note(self, problem: str, index: int, position: int | None = None, job_id: UUID | None = None) -> None:
        if not self.first:
            self.first.update(problem=problem, leaf_index=index, position=position, job_id=job_id)

    def result(self, *, archived: int, root: bytes | None) -> TreeRecount:
        return TreeRecount(self.tree_size, self.builder.size, archived, root, **self.first)

    async def add_archived(self, archived: int, page: int) -> bool:
        """The sealed leaves below the archive boundary; False when one is missing."""
        try:
            async for value in stream_leaf_hashes(self.conn, 0, archived, page):
                self.builder.append(value)
        except LeafMissing as missing:
            self.note("a sealed leaf of the archived range is missing from vjm.audit_leaves", missing.index)
            return False
        return True

    async def add_live(self, archived: int, page: int) -> None:
        """The leaves of the events after the archive boundary, in commit order, up to the tree's size."""
        cursor = (0, 0)
        if archived:
            boundary = await fetch_one(self.conn, "audit_leaf_at", leaf_index=archived - 1)
            cursor = (boundary["xact_id"], boundary["position"])
        while self.builder.size < self.tree_size:
            rows = await fetch_all(self.conn, "audit_events_in_commit_order", after_xact_id=cursor[0],
                                   after_position=cursor[1], limit=min(page, self.tree_size - self.builder.size))
            if not rows:
                return
            for row in rows:
                await self._add_event(row)
            cursor = (rows[-1]["xact_id"], rows[-1]["position"])

    async def _add_event(self, row: Record) -> None:
        index, leaf = self.builder.size, leaf_hash(row["recomputed"])
        if not self.first:
            if row["recomputed"] != row["hash"]:
                self.note("the event's content does not match its hash (edited)", index, row["position"],
                          row["job_id"])
            elif row["sealed_index"] != index:
                await self._note_displaced(index, row)
            elif row["sealed_leaf"] != leaf:
                self.note("the event differs from the one sealed here (edited, hash recomputed)", index,
                          row["position"], row["job_id"])
        self.builder.append(leaf)

    async def _note_displaced(self, index: int, row: Record) -> None:
        """The event found at `index` was sealed elsewhere (or never): say what is at odds."""
        sealed = await fetch_optional(self.conn, "audit_leaf_at", leaf_index=index)
        if sealed is None:
            self.note(f"position {row['position']} is not in the sealed tree", index, row["position"], row["job_id"])
        elif not sealed["present"]:
            self.note(f"the event sealed as leaf {index} is missing (deleted)", index, sealed["position"],
                      sealed["job_id"])
        elif row["sealed_index"] is None:
            self.note(f"position {row['position']}, never sealed, now comes where position {sealed['position']} "
                      "was sealed (inserted)", index, sealed["position"], sealed["job_id"])
        else:
            self.note(f"the commit order changed: position {row['position']} (sealed as leaf "
                      f"{row['sealed_index']}) now comes where position {sealed['position']} was sealed (reordered)",
                      index, sealed["position"], sealed["job_id"])

    async def note_truncated(self) -> None:
        size = self.builder.size
        sealed = await fetch_optional(self.conn, "audit_leaf_at", leaf_index=size)
        self.note(f"the log ends after {size} of the head's {self.tree_size} events (truncated)", size,
                  sealed["position"] if sealed else None, sealed["job_id"] if sealed else None)


async def job_leaves(executor: Executor, job_id: UUID, tree_size: int) -> list[Record]:
    """One job's sealed events inside a tree of `tree_size`, in version order."""
    return await fetch_all(executor, "audit_job_leaves", job_id=job_id, tree_size=tree_size)


async def subtree_hashes(conn: Executor, tree_size: int, wanted: Iterable[Range]) -> tuple[bytes, dict[Range, bytes]]:
    """The root of the sealed tree of `tree_size` and the hashes of the wanted ranges, in one pass."""
    collector = SubtreeCollector(tree_size, wanted)
    async for value in stream_leaf_hashes(conn, 0, tree_size):
        collector.append(value)
    return collector.finish()


async def keep_head(executor: Executor, tree_size: int, root_hash: bytes, timestamp: int, key_id: str,
                    public_key: bytes, signature: bytes) -> None:
    """Store a signed head for publication (idempotent)."""
    await execute(executor, "audit_head_insert", tree_size=tree_size, root_hash=root_hash, timestamp=timestamp,
                  key_id=key_id, public_key=public_key, signature=signature)


async def latest_head(executor: Executor) -> Record | None:
    """The newest stored head, or None."""
    return await fetch_optional(executor, "audit_head_latest")
