"""The worker runtime over the HTTP API: `HttpTransport` makes the processor calls with a service token,
so that a worker in another network needs no database connection (a fleet of workers holds the API's
pool, not a connection each).

It satisfies WorkerTransport (transport.py) with the manager's own signatures. The API's problem
documents become the same vjm errors the manager raises (a stale attempt is StaleAttempt, a job that
moved on is InvalidTransition, ...), so the runtime cannot tell the two paths apart. Two calls wait on
the server: a claim long-polls until a job is claimable (`claim_wait` seconds at most), and the
watcher's heartbeat (http_watch.py) is held until one of the worker's jobs leaves `processing`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from statemachine.validation import PlatformTargets, check_platforms
from store.workers import WorkerBeat

from ..models import Attempt, BulkResult, Job
from .config import WorkerConfig
from .http_problems import ApiUnavailable, raise_for_problem
from .transport import ApiAccess, WatchTargets, WorkerLink

LONG_POLL_WAIT = 25.0  # seconds a claim or a watch is held at most: under the usual 30 s proxy idle timeouts
MAX_CLAIM = 100  # the claim endpoint's `limit` bound
MAX_HOST = 128  # the registry endpoint's `host` bound
CALL_TIMEOUT = 30.0  # seconds for any call that does not wait on the server


class HttpTransport:
    """The processor operations over HTTP (see the module docstring). `processors` and `workers` are itself."""

    def __init__(self, client: httpx.AsyncClient, *, claim_wait: float = LONG_POLL_WAIT) -> None:
        self._client, self._claim_wait = client, claim_wait
        self._interrupted = asyncio.Event()

    @property
    def processors(self) -> HttpTransport:
        return self

    @property
    def workers(self) -> HttpTransport:
        return self

    def interrupt(self) -> None:
        """End a claim in flight (it claims nothing) and make further claims return nothing: the worker stops."""
        self._interrupted.set()

    async def claim_jobs(self, worker_id: str, limit: int = 1, platform_target: PlatformTargets = None, *,
                         lease_seconds: float | None = None) -> list[Attempt]:
        """Up to `limit` jobs of the platforms (one, several, None: all); held by the server up to `claim_wait`
        seconds while none is claimable."""
        body = {"worker_id": worker_id, "limit": min(limit, MAX_CLAIM), **_platform_fields(platform_target),
                "lease_seconds": lease_seconds, "wait": self._claim_wait}
        answer = await self._unless_interrupted(self._post("/api/v1/processor/jobs/claim", body,
                                                           waits=self._claim_wait))
        return [] if answer is None else [Attempt.model_validate(a) for a in answer["attempts"]]

    async def complete_jobs(self, completions: list[dict[str, Any]], *,
                            with_jobs: bool = True) -> list[BulkResult]:
        """The API's batch completion; its results always carry the jobs, whatever `with_jobs` says."""
        answer = await self._post("/api/v1/processor/jobs/complete", {"completions": completions})
        return [BulkResult.model_validate(result) for result in answer["results"]]

    async def report_progress(self, job_id: UUID | str, attempt: int, percent: float | None = None,
                              clips_done: int | None = None, *, phase: str | None = None) -> Job:
        body = {"attempt": attempt, "percent": percent, "clips_done": clips_done, "phase": phase}
        return await self._job_call(job_id, "progress", body)

    async def fail_job(self, job_id: UUID | str, error: str, attempt: int | None = None) -> Job:
        return await self._job_call(job_id, "fail", {"attempt": attempt, "error": error})

    async def requeue_job(self, job_id: Any, attempt: int, *, error: str | None = None,
                          retry_after: float | None = None) -> Job:
        return await self._job_call(job_id, "requeue", {"attempt": attempt, "error": error,
                                                        "retry_after": retry_after})

    async def release_job(self, job_id: Any, attempt: int, *, reason: str | None = None) -> Job:
        return await self._job_call(job_id, "release", {"attempt": attempt, "reason": reason})

    async def renew_leases(self, worker_id: str, leases: list[tuple[Any, int, float]]) -> dict[UUID, datetime]:
        """Renew the leases now (the heartbeat, not held): the jobs still this worker's, with their deadline."""
        answer = await self.heartbeat(worker_id, leases, wait=0.0)
        return {UUID(held["job_id"]): datetime.fromisoformat(held["expires_at"]) for held in answer["held"]}

    async def heartbeat(self, worker_id: str, leases: list[tuple[Any, int, float]], *, wait: float) -> dict[str, Any]:
        """The heartbeat endpoint's answer (`held`, `lost`); with `wait`, held until a job is lost or `wait` passes."""
        body = {"worker_id": worker_id, "wait": wait,
                "leases": [{"job_id": str(job_id), "attempt": attempt, "seconds": seconds}
                           for job_id, attempt, seconds in leases]}
        return await self._post("/api/v1/processor/heartbeat", body, waits=wait)

    async def beat(self, worker: WorkerBeat) -> None:
        """This worker's registry row (no answer body); the API takes host names of up to MAX_HOST characters."""
        await self._post("/api/v1/processor/workers", {**asdict(worker), "host": worker.host[:MAX_HOST]})

    async def _job_call(self, job_id: Any, action: str, body: dict[str, Any]) -> Job:
        answer = await self._post(f"/api/v1/processor/jobs/{job_id}/{action}", body, job_id=job_id)
        return Job.model_validate(answer)

    async def _post(self, path: str, body: dict[str, Any], *, waits: float = 0.0, job_id: Any = None) -> Any:
        """POST `body` (None values left out); the JSON answer, or the vjm error its problem document means."""
        timeout = httpx.Timeout(CALL_TIMEOUT, read=CALL_TIMEOUT + waits)
        payload = {key: value for key, value in body.items() if value is not None}
        try:
            response = await self._client.post(path, json=payload, timeout=timeout)
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"the vjm API did not answer {path}: {exc!r}"[:500]) from exc
        raise_for_problem(response, job_id)
        return response.json() if response.content else None

    async def _unless_interrupted(self, call: Any) -> Any:
        """The call's answer; None, with the call cancelled, if `interrupt()` comes first."""
        if self._interrupted.is_set():
            call.close()
            return None
        request = asyncio.ensure_future(call)
        interrupted = asyncio.ensure_future(self._interrupted.wait())
        await asyncio.wait({request, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        interrupted.cancel()
        if request.done():
            return request.result()
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
        return None


def _platform_fields(platform_target: PlatformTargets) -> dict[str, Any]:
    """A claim's platforms as the claim endpoint takes them: one as `platform_target` (which every server
    version reads), several as `platforms`, none for every platform."""
    platforms = check_platforms(platform_target)
    if platforms is None:
        return {}
    return {"platform_target": platforms[0]} if len(platforms) == 1 else {"platforms": list(platforms)}


@contextlib.asynccontextmanager
async def http_link(api: ApiAccess, config: WorkerConfig) -> AsyncIterator[WorkerLink]:
    """The link a Worker runs over with `api`: an HttpTransport on one pooled client, and the heartbeat watcher.

    Every claim long-polls: one claim names all the worker's platforms, and the server answers it as soon
    as a job of any of them is claimable."""
    from .http_watch import HeartbeatWatch

    headers = {"Authorization": f"Bearer {api.token}", "User-Agent": f"vjm-worker/{config.worker_id}"[:200]}
    async with httpx.AsyncClient(base_url=api.url.rstrip("/"), headers=headers,
                                 limits=httpx.Limits(max_connections=config.concurrency + 8)) as client:
        transport = HttpTransport(client)

        def watcher(targets: WatchTargets) -> HeartbeatWatch:
            return HeartbeatWatch(transport, config.worker_id, targets.keeper, wait=LONG_POLL_WAIT)

        yield WorkerLink(transport, watcher, transport.interrupt)
