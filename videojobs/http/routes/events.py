"""`GET /api/v1/events/stream`: server-sent events of the job changes the caller may see.

Each event's `id` is the change feed's `seq` (vjm.job_changes, numbered in commit
order), so `Last-Event-ID` (or `?after=`) resumes with no gap and no duplicate.
Comment lines (`: ping`) are heartbeats.

Every stream of the app is fed by one ChangeFeedHub (`manager.subscriptions.open_hub()`,
started with the app): one database connection reads the feed once for all of them, whatever
their number. A stream that resumes behind the hub catches up through the pooled
connections first. What an end user's stream carries is decided by the database alone
(the RLS policy of vjm.job_changes, for the catch-up and, through vjm.job_changes_visible,
for the hub's pages alike): the rule is not written again here. Service streams see every
change.

A stream whose client reads too slowly to keep up (more than `sse_queue_size` changes
behind) is ended after the changes already buffered for it, with a comment line saying
so; the client reconnects with Last-Event-ID and loses nothing. The reader and the
other streams never wait for it. A client that stops reading altogether (its socket
full, the connection still open) would hold its response in a write forever: a write
that waits longer than `sse_send_timeout_seconds` ends the stream and its connection.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from videojobs import ValidationError
from videojobs.manager.subscriptions import OVERFLOW, ChangeFeedHub
from videojobs.models import JobChange

from ..dependencies import Caller, Manager, State
from ..schemas import JobChangeMessage
from .common import problems

log = structlog.get_logger("vjm.http.stream")
router = APIRouter(prefix="/api/v1/events", tags=["events"])
MAX_SEQ = 2**63 - 1

# The schema of each event is stated by openapi.py (with the JobChangeMessage component).
STREAM_DOC: dict[int | str, Any] = {200: {
    "description": "`text/event-stream`: events `job_change` whose data is a JobChangeMessage and whose id is "
                   "its seq, with `: ping` heartbeats. A client that falls too far behind (it reads slower than "
                   "changes arrive) gets what was buffered for it, a comment line, and the end of the stream: "
                   "reconnect with `Last-Event-ID` to resume with nothing lost.",
    "content": {"text/event-stream": {"example": {
        "event": "job_change", "id": "17",
        "data": '{"seq": 17, "position": 42, "job_id": "9b2f6c1e-3f7a-4d1e-9a57-0c4f2b1d8e11", "user_id": "user-123", '
                '"team_id": null, "status": "processing", "version": 2, "changed_at": "2025-01-01T12:00:01Z"}'}}}}}


# A seq in ASCII digits (str.isdigit() would take '²', which int() refuses), at most 18 of them
# (every one fits a bigint; the feed will not reach 10**18); empty means absent. The document
# states this pattern and the route holds the header to it (HTTP itself strips the spaces or
# tabs around a header value: the route does too, for servers that do not).
LAST_EVENT_ID_PATTERN = r"^[0-9]{0,18}$"


def resume_point(last_event_id: str | None, after: int | None) -> int:
    """Where to resume: Last-Event-ID (what a reconnecting browser sends) wins over `after`; empty is absent."""
    text = None if last_event_id is None else last_event_id.strip(" \t")
    if not text:
        return after or 0
    if re.fullmatch(LAST_EVENT_ID_PATTERN, text) is None:
        raise ValidationError("Last-Event-ID must be a change sequence number", field="header.last-event-id")
    return int(text)


@router.get("/stream", summary="Live job changes (server-sent events)", response_class=EventSourceResponse,
            responses={**STREAM_DOC, **problems(403)})
async def stream(who: Caller, manager: Manager, state: State,
                 last_event_id: Annotated[str | None, Header(
                     alias="Last-Event-ID", max_length=32, json_schema_extra={"pattern": LAST_EVENT_ID_PATTERN},
                     description="The id of the last event received: resume after it")] = None,
                 after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="Resume after this seq")]
                 = None) -> EventSourceResponse:
    """Every visible change after the resume point, in commit order, then live ones as they happen."""
    start = resume_point(last_event_id, after)
    await manager.teams.visible(1)  # the preflight: a database that is down gives 503 before the stream starts
    hub = await state.require_feed_hub()
    log.info("stream_opened", user_id=who.sub, role=who.role, after=start)
    return EventSourceResponse(_events(hub, start, None if who.is_service else who.sub, state),
                               ping=state.options.sse_heartbeat_seconds,
                               send_timeout=state.options.sse_send_timeout_seconds,
                               headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@functools.lru_cache(maxsize=4096)
def encode_change(change: JobChange) -> bytes:
    """The SSE bytes of one change: encoded once per process, however many streams carry it."""
    message = JobChangeMessage.model_validate(change.model_dump())
    return ServerSentEvent(data=json.dumps(message.model_dump(mode="json")), event="job_change",
                           id=str(change.seq)).encode()


async def _events(hub: ChangeFeedHub, start: int, user_id: str | None,
                  state: Any) -> AsyncIterator[ServerSentEvent | bytes]:
    # Subscribed here, not in the route: a response that never starts leaves nothing behind.
    subscription = hub.subscribe(after=start, user_id=user_id)
    state.metrics.sse_clients.inc()
    try:
        async for batch in subscription.batches():  # one write per batch, not per change
            chunk = b"".join([encode_change(c) for c in batch])
            if chunk:
                yield chunk
        if subscription.ended == OVERFLOW:
            state.metrics.sse_overflows.inc()
            yield ServerSentEvent(comment="too far behind: reconnect with Last-Event-ID to resume")
    finally:
        state.metrics.sse_clients.dec()
        await subscription.close()
        log.info("stream_closed", user_id=user_id, position=subscription.position,
                 reason=subscription.ended or "client")
