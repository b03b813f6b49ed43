"""Channel snooping: the least privileged login LISTENs on every vjm channel while the
tenants work. NOTIFY is a doorbell: ids, positions, states and owners, nothing else."""

from __future__ import annotations

import json

import pytest

from store.identity import connect_as
from tests.support.doorbell import ringing_doorbell
from tests.support.tenants import SECRET_ERROR, SECRET_FILENAME, SECRET_PATH, build_tenants
from tests.support.waiting import eventually

CHANNELS = ("vjm_events", "vjm_jobs")
FORBIDDEN_KEYS = {"data", "original_filename", "filename", "output_paths", "path", "paths", "error",
                  "error_message", "reason", "metadata", "worker_id", "actor"}
MAX_PAYLOAD = 8000


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.mark.parametrize("session_role", [None, "vjm_authenticated"])
async def test_listeners_hear_doorbells_only(database_url: str, user_pool, processor_pool,
                                             session_role: str | None) -> None:
    heard: list[tuple[str, str]] = []
    spy = await connect_as(database_url, role=session_role)  # vjm_app, no identity
    try:
        for channel in CHANNELS:
            await spy.add_listener(channel, lambda _c, _pid, ch, payload: heard.append((ch, payload)))
        async with ringing_doorbell(database_url):  # someone waits, so every append rings for all listeners
            await build_tenants(user_pool, processor_pool, database_url)
            await eventually(lambda: {ch for ch, _ in heard} == set(CHANNELS), within=30)
    finally:
        await spy.close()
    for channel, payload in heard:
        assert len(payload.encode()) < MAX_PAYLOAD, channel
        for secret in (SECRET_FILENAME, SECRET_PATH, SECRET_ERROR, "secret", "/private"):
            assert secret not in payload, (channel, payload)
        assert not _keys(json.loads(payload)) & FORBIDDEN_KEYS, (channel, payload)
