"""Running the real `vjm` console script as a user would: a subprocess, its output and exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

VJM = str(Path(sys.executable).with_name("vjm"))


def environment_without(*names: str, **extra: str) -> dict[str, str]:
    """This process's environment without `names`, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if k not in names}, **extra}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any database URL or JWT secret, so only the command's flags decide; JSON logs."""
    return environment_without("VJM_DATABASE_URL", "VJM_JWT_SECRET", VJM_LOG_JSON="1", **extra)


def vjm(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `vjm *args` to the end (environment: `env`, else clean_env())."""
    return subprocess.run([VJM, *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env() if env is None else env)


async def avjm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """As `vjm`, off the event loop, so that what runs in this loop (a projector, a server) keeps working."""
    return await asyncio.to_thread(vjm, *args, env=env)


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `vjm *args` in the background, its stdout and stderr piped (environment: `env`, else clean_env()).

    Ctrl-C reaches it as it reaches a command in a terminal: a test suite started in the background of a
    non-interactive shell (`make test &`, CI) ignores SIGINT, and an ignored signal stays ignored across exec."""
    return subprocess.Popen([VJM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env() if env is None else env, preexec_fn=_interruptible)


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def first_line_with(process: subprocess.Popen, text: str, within: float = 60) -> str:
    """Read stdout lines until one contains `text` (the process's own readiness signal)."""
    def read() -> str:
        for line in process.stdout:
            if text in line:
                return line
        raise AssertionError(f"{text!r} never printed; stderr: {process.stderr.read()}")
    return await asyncio.wait_for(asyncio.to_thread(read), within)


async def finish(process: subprocess.Popen, *, terminate: bool) -> tuple[int, str, str]:
    """SIGTERM it (or let it end by itself), wait, and return (exit code, rest of stdout, stderr)."""
    if terminate:
        process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
    return code, process.stdout.read(), process.stderr.read()
