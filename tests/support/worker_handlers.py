"""Handlers that the worker tests run in real `vjm worker` processes.

What a handler does is written in the job's filename, `<kind>-<argument>.mp4`, so that one
worker process serves every case. Each prints `<what> <job_id> <attempt>` lines on stdout
(flushed), which the tests read to know what the handler saw and did.
"""

from __future__ import annotations

import asyncio
import time

from videojobs import JobContext, Retry, TransientError


def say(what: str, ctx: JobContext, *extra: object) -> None:
    print(what, ctx.job_id, ctx.attempt.attempt, *extra, flush=True)


async def handle(job, ctx: JobContext) -> list[str]:
    """Dispatch on the filename: ok, boom, retry-<after>, transient, slow-<seconds>, hang, beat-<seconds>,
    progress-<steps>, zombie-<seconds>."""
    kind, _, argument = job.original_filename.removesuffix(".mp4").partition("-")
    say("started", ctx, kind, f"{time.time():.6f}")
    try:
        return await BEHAVIOURS[kind](ctx, argument)
    except asyncio.CancelledError:
        say("cancelled", ctx, f"{time.time():.6f}")
        raise


async def ok(ctx: JobContext, _: str) -> list[str]:
    return [f"/out/{ctx.job_id}/clip1.mp4", f"/out/{ctx.job_id}/clip2.mp4"]


async def boom(ctx: JobContext, _: str) -> list[str]:
    raise RuntimeError("encoder exploded\x00 " + "x" * 5000)


async def retry(ctx: JobContext, after: str) -> list[str]:
    raise Retry("encoder busy", after=float(after))


async def transient(ctx: JobContext, _: str) -> list[str]:
    raise TransientError("storage unreachable")


async def slow(ctx: JobContext, seconds: str) -> list[str]:
    await asyncio.sleep(float(seconds))  # the handler's work: a job that takes this long
    say("finished", ctx)
    return [f"/out/{ctx.job_id}/slow.mp4"]


async def hang(ctx: JobContext, _: str) -> list[str]:
    await asyncio.sleep(3600)  # the handler's work: it never finishes (cancelled or killed)
    return []


async def beat(ctx: JobContext, seconds: str) -> list[str]:
    """Run `seconds` with no progress at all: only the runtime's heartbeats keep the job."""
    await asyncio.sleep(float(seconds))  # the handler's work, with no progress reports
    say("finished", ctx)
    return [f"/out/{ctx.job_id}/long.mp4"]


async def progress(ctx: JobContext, steps: str) -> list[str]:
    for step in range(int(steps)):
        await ctx.progress(percent=100 * step / int(steps), clips_done=step, phase="encode")
        await asyncio.sleep(0.05)  # the handler's work between two progress reports
    return [f"/out/{ctx.job_id}/p.mp4"]


async def zombie(ctx: JobContext, seconds: str) -> list[str]:
    """The first attempt takes `seconds` (long enough to be frozen, lose its lease and report late); later ones are quick."""
    if ctx.attempt.attempt == 1:
        await asyncio.sleep(float(seconds))  # the first attempt's work: long enough to be frozen mid-way
        say("reporting", ctx)
    return [f"/out/{ctx.job_id}/attempt{ctx.attempt.attempt}.mp4"]


BEHAVIOURS = {"ok": ok, "boom": boom, "retry": retry, "transient": transient, "slow": slow, "hang": hang,
              "beat": beat, "progress": progress, "zombie": zombie}
