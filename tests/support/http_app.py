"""What an HTTP test needs to build the API: its settings, fast stream timings, a request body."""

from __future__ import annotations

from tests.support.factories import create_data
from tests.support.tokens import AUDIENCE, TEST_JWT_SECRET
from videojobs import Settings
from videojobs.http import HttpOptions

# Heartbeats and polls short enough that stream tests finish in seconds.
FAST = HttpOptions(sse_heartbeat_seconds=0.5, sse_poll_seconds=0.2)

# The body of a create request (POST /api/v1/process); the HTTP tests assert clip_count 3.
JOB = create_data(clip_count=3)


def http_settings(database_url: str) -> Settings:
    """Settings of a test app: this test's database and the session's identity secret."""
    return Settings(database_url=database_url, jwt_secret=TEST_JWT_SECRET, jwt_audience=AUDIENCE)
