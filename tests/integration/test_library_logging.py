"""Using `store` as a library, in a process of its own: quiet unless asked, and what the README shows works.

A subprocess, because the logging default is set when the package is first imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from store import EventStore, create_pool, prepare_event

    async def main(url):
        pool = await create_pool(url)
        store = EventStore(pool)
        job = await store.append(prepare_event("create", {
            "original_filename": "video.mp4", "original_filesize": 1_024_000, "clip_count": 5,
            "quality_preset": "pro", "enhancement_level": "basic", "platform_target": "tiktok",
        }, user_id="user-123"))
        print("created", job.job_id)
        await pool.close()

    asyncio.run(main(sys.argv[1]))
""")


def _run(database_url: str, level: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VJM_LOG_LEVEL"}
    if level:
        env["VJM_LOG_LEVEL"] = level
    return subprocess.run([sys.executable, "-c", SCRIPT, database_url], capture_output=True, text=True,
                          env=env, timeout=60, check=True)


def test_the_store_logs_no_debug_lines_unless_asked(database_url: str) -> None:
    for level in (None, "WARNING"):
        quiet = _run(database_url, level)
        assert quiet.stdout.startswith("created ")
        assert "job_transitioned" not in quiet.stdout + quiet.stderr
    loud = _run(database_url, "DEBUG")
    assert "job_transitioned" in loud.stderr and "job_transitioned" not in loud.stdout  # logs go to stderr
