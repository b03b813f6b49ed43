"""The processors service: what video workers call to claim queued jobs and report many at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from statemachine import ValidationError
from statemachine.validation import PlatformTargets, check_platforms, check_worker_id
from store.events import as_uuid, prepare_event
from store.job_writes import claim_jobs
from store.leases import LeaseRenewal, next_claimable_in, renew_leases

from ..models import Attempt, BulkResult, Job
from .job_inputs import attempt_of
from .session import Session, fold_job

MAX_COMPLETIONS = 10_000
COMPLETION_FIELDS = frozenset({"job_id", "attempt", "output_paths", "processing_time"})


class Processors:
    """claim_jobs, complete_jobs."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def claim_jobs(self, worker_id: str, limit: int = 1, platform_target: PlatformTargets = None, *,
                         lease_seconds: float | None = None) -> list[Attempt]:
        """Start up to `limit` queued jobs for `worker_id`; two workers never get the same job.

        The order is the claim policy's (sql/schema/063_claims.sql, `manager.queue`): higher priority
        first, users (or teams) taking turns, the oldest first within a turn; nothing of a paused
        platform or past a cap. `platform_target` is one platform, a list (tuple, set) of them, or
        None for all: one claim across them. An empty list or an unknown platform raises
        ValidationError (field `platform_target`).

        With `lease_seconds`, each started job holds a lease of that length, which the worker renews
        (videojobs.Worker does); one whose lease runs out is timed out by the stuck detector.

        Claims read the run queue the append functions keep, not the projection: a job queued a
        moment ago can be claimed at once, one claimed a moment ago is never offered again.
        """
        check_worker_id(worker_id)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit must be an integer from 1 to 1000", field="limit")
        platforms = check_platforms(platform_target)
        async with self._session.connection() as conn:
            histories = await claim_jobs(conn, worker_id, limit, platforms, lease_seconds)
        attempts = []
        for history in histories:
            started = history.event
            self._session.remember(started.cursor)
            attempts.append(Attempt(job_id=started.job_id, attempt=started.attempt, worker_id=worker_id,
                                    job=fold_job(history)))
        return attempts

    async def next_claimable_in(self, platform_target: PlatformTargets = None) -> float | None:
        """Seconds until the earliest queued job (of one platform, of several, or of any: as `claim_jobs` takes
        them) held back by a requeue's delay may be claimed; None when none is held back. An idle worker sleeps at
        most that long."""
        platforms = check_platforms(platform_target)
        async with self._session.connection() as conn:
            return await next_claimable_in(conn, platforms)

    async def renew_leases(self, worker_id: str, leases: list[tuple[Any, int, float]]) -> dict[UUID, datetime]:
        """Renew `worker_id`'s leases, each `(job_id, attempt, seconds)`: the jobs it still holds, with their deadline.

        A heartbeat is an in-place update, not an event, and never brings a deadline closer: a
        renewal with a shorter length than the last one keeps the later deadline. A job missing
        from the answer is no longer that attempt's (timed out, cancelled, deleted, re-run): stop its work.
        """
        check_worker_id(worker_id)
        renewals = [LeaseRenewal(as_uuid(job_id), attempt_of(attempt, required=True) or 0, float(seconds))
                    for job_id, attempt, seconds in leases]
        async with self._session.connection() as conn:
            return await renew_leases(conn, worker_id, renewals)

    async def requeue_job(self, job_id: Any, attempt: int, *, error: str | None = None,
                          retry_after: float | None = None) -> Job:
        """Give a processing job back to be tried again, not before `retry_after` seconds (a Retry, a transient error).

        It uses up this attempt, as a time_out does: with no attempts left the job fails. The
        run queue holds the job back until then (vjm.run_queue.not_before).
        """
        _, job = await self._session.append_job("requeue", {"error": error, "retry_after": retry_after},
                                                job_id=as_uuid(job_id), attempt=attempt_of(attempt, required=True))
        return job

    async def release_job(self, job_id: Any, attempt: int, *, reason: str | None = None) -> Job:
        """Give a processing job back unfinished (a worker shutting down): queued again, with its attempt given back."""
        _, job = await self._session.append_job("release", {"reason": reason}, job_id=as_uuid(job_id),
                                                attempt=attempt_of(attempt, required=True))
        return job

    async def complete_jobs(self, completions: list[dict[str, Any]], *, actor: str | None = None,
                            with_jobs: bool = True) -> list[BulkResult]:
        """Complete many processing jobs at once: one round trip and one commit per 50 jobs.

        Each completion is `{"job_id", "attempt", "output_paths", "processing_time"}` (the
        last optional), as `complete_job` takes them. Returns a result per completion, in
        order: the completed job, or the typed error that refused it (a stale attempt, a
        job no longer processing); the others complete all the same. A malformed
        completion raises ValidationError naming it, and nothing is written. With `with_jobs`
        false a completed job's result carries no job (the worker runtime needs none): one read less.
        """
        if not isinstance(completions, list) or not 1 <= len(completions) <= MAX_COMPLETIONS:
            raise ValidationError(f"completions must be a list of 1 to {MAX_COMPLETIONS}", field="completions")
        events = [_completion(i, c, actor or self._session.actor("complete")) for i, c in enumerate(completions)]
        return await self._session.append_each(events, [event.job_id for event in events], with_jobs=with_jobs)


def _completion(index: int, completion: Any, actor: str | None):
    if not isinstance(completion, dict):
        raise ValidationError(f"completions[{index}] must be an object", field=f"completions.{index}")
    unknown = sorted(set(completion) - COMPLETION_FIELDS)
    if unknown:
        raise ValidationError(f"completions[{index}]: unknown field {unknown[0]!r}",
                              field=f"completions.{index}.{unknown[0]}")
    attempt = completion.get("attempt")
    try:
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValidationError("attempt must be the positive integer returned by claim_jobs", field="attempt")
        return prepare_event("complete", {"output_paths": completion.get("output_paths", []),
                                          "processing_time": completion.get("processing_time")},
                             job_id=as_uuid(completion.get("job_id", "")), attempt=attempt, actor=actor)
    except ValidationError as exc:
        raise ValidationError(f"completions[{index}]: {exc}", field=f"completions.{index}.{exc.field}") from exc
