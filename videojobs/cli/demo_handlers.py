"""The demo's encoder: the handler `vjm demo` runs in real `vjm worker` processes.

    vjm worker videojobs.cli.demo_handlers:encode --worker-id worker-1 --lease 2 ...

It simulates an encode (sleeps, no media): a `probe` phase, then clip by clip an `encode`
phase, then `package`, reporting progress with `ctx.progress` and returning the clips' paths.
What goes wrong with a job is written in its upload's name, where a real encoder would find
it in the file: `cooking-07.noaudio.mov` fails its first attempt mid-encode (FAULTS), and
`keynote-12.busy.mp4` hits a busy encoder on its first attempt (TransientError: re-queued
with backoff). Every step is printed on stdout as one JSON line, which `vjm demo` reads to
narrate, e.g. `{"event": "cancelled", "job": "...", "attempt": 1, "encoded": 2, "clips": 6, ...}`.

Set by `vjm demo` in the worker's environment:
- VJM_DEMO_PACE: multiplies every delay (default 1);
- VJM_DEMO_FREEZE_ON: N: the worker process stops itself (SIGSTOP) in the package phase of
  the first job from its Nth on, after every clip is encoded and before its complete is sent:
  a hung worker. Whoever sends SIGCONT lets it go on, and its late complete is then refused
  by attempt fencing (the freeze is self-inflicted so that the thaw always lands there; a
  helper process thaws it after a minute, should the demo die first);
- VJM_DEMO_PARENT: the demo's pid; the worker stops (SIGTERM) once the demo is gone.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from videojobs import JobContext, TransientError

FAULTS = {"noaudio": "audio track missing", "prores": "unsupported codec: prores_raw",
          "moov": "corrupt moov atom", "lowres": "resolution below 480p"}
BUSY = "busy"  # the tag of an upload whose first attempt meets a busy encoder
CLIP_SECONDS = (0.35, 1.0)  # one clip's encode takes this long (times the pace)
# A frozen worker's safety net, should the demo die without thawing it: SIGCONT after a minute.
THAW_LATER = "import os, signal, sys, time; time.sleep(60); os.kill(int(sys.argv[1]), signal.SIGCONT)"


class EncodeError(Exception):
    """The upload cannot be encoded as it is (the job fails with this text)."""


def say(event: str, ctx: JobContext, **fields: Any) -> None:
    """One JSON line on stdout, flushed: what this handler is doing now."""
    line = {"event": event, "worker": ctx.attempt.worker_id, "job": str(ctx.job_id),
            "attempt": ctx.attempt.attempt, "t": round(time.time(), 6), **fields}
    print(json.dumps(line), flush=True)


def fault_of(filename: str) -> str | None:
    """The tag in `<name>-<nn>.<tag>.<ext>`, if the upload carries one."""
    parts = filename.split(".")
    return parts[-2] if len(parts) >= 3 else None


class _Frozen:
    """How many jobs this process has started, and whether it has frozen already (it freezes once)."""

    started = 0
    done = False

    @classmethod
    def due(cls) -> bool:
        freeze_on = int(os.environ.get("VJM_DEMO_FREEZE_ON") or 0)
        return bool(freeze_on) and not cls.done and cls.started >= freeze_on


async def encode(job: Any, ctx: JobContext) -> list[str]:
    """Probe, encode clip by clip, package; return one path per clip. Cancelled: clean up and stop."""
    _Frozen.started += 1
    pace = float(os.environ.get("VJM_DEMO_PACE") or 1.0)
    rng = random.Random(job.job_id.int + ctx.attempt.attempt)
    encoded = 0
    say("started", ctx, clips=job.clip_count, upload=job.original_filename)
    try:
        await _probe(job, ctx)
        for clip in range(1, job.clip_count + 1):
            await asyncio.sleep(rng.uniform(*CLIP_SECONDS) * pace)
            _fail_if_damaged(job, ctx, clip)
            await ctx.progress(percent=round(100 * clip / job.clip_count, 1), clips_done=clip, phase="encode")
            encoded = clip
            say("clip", ctx, clip=clip, clips=job.clip_count)
        await ctx.progress(percent=100, clips_done=job.clip_count, phase="package")
        say("package", ctx)
        _freeze_if_due(ctx)
        return [f"/processed/{job.job_id}/clip{i}.mp4" for i in range(1, job.clip_count + 1)]
    except asyncio.CancelledError:
        # The runtime cancels a handler whose job is no longer its attempt's (cancelled, timed out):
        # clean up what this attempt wrote, say so, and let the cancellation go on.
        say("cancelled", ctx, encoded=encoded, clips=job.clip_count, removed=f"/processed/{job.job_id}/partial")
        raise


async def _probe(job: Any, ctx: JobContext) -> None:
    await ctx.progress(percent=0, clips_done=0, phase="probe")
    if fault_of(job.original_filename) == BUSY and ctx.attempt.attempt == 1:
        say("busy", ctx)
        raise TransientError("encoder busy: every GPU slot taken")


def _fail_if_damaged(job: Any, ctx: JobContext, clip: int) -> None:
    """A damaged upload fails its first attempt at a clip fixed by its id (its owner re-exports and retries)."""
    fault = FAULTS.get(fault_of(job.original_filename) or "")
    if fault and ctx.attempt.attempt == 1 and clip == 1 + job.job_id.int % job.clip_count:
        say("failing", ctx, clip=clip, error=fault)
        raise EncodeError(fault)


def _freeze_if_due(ctx: JobContext) -> None:
    """Stop this whole process (SIGSTOP) until someone sends SIGCONT, then carry on where it was."""
    if not _Frozen.due():
        return
    _Frozen.done = True
    say("freezing", ctx, pid=os.getpid())
    safety_net = subprocess.Popen([sys.executable, "-c", THAW_LATER, str(os.getpid())], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.kill(os.getpid(), signal.SIGSTOP)
    safety_net.kill()
    safety_net.wait()  # killed: it ends at once
    say("thawed", ctx)  # nothing else ran meanwhile: its complete goes out next, with the stale attempt


def _stop_when_orphaned(parent: int) -> None:
    """The demo is gone (killed outright): stop gracefully, releasing what runs. Its pipes went with it, so
    stdout and stderr go to /dev/null first: a write to a broken pipe would fail the shutdown itself."""
    while os.getppid() == parent:
        time.sleep(0.5)
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent() -> None:
    parent = int(os.environ.get("VJM_DEMO_PARENT") or 0)
    if parent:
        threading.Thread(target=_stop_when_orphaned, args=(parent,), name="vjm-demo-orphan", daemon=True).start()


_watch_parent()
