"""Small builders shared by tests."""

from __future__ import annotations

from typing import Any

from store import EventStore, prepare_event

# Who the audit trail names for what the tests themselves write through the store or raw SQL
# without naming an actor: every test database's default `vjm.principal` (tests/conftest.py).
# A trusted session with no actor and no principal is refused (sql/schema/060_write_api.sql);
# tests/integration/test_actors.py clears it to show that.
TEST_PRINCIPAL = "tests"


def principal_of(database: str) -> list[str]:
    """The statements that make TEST_PRINCIPAL the default service principal of `database`'s sessions."""
    return [f"ALTER DATABASE \"{database}\" SET vjm.principal = '{TEST_PRINCIPAL}'"]


def create_data(**overrides: Any) -> dict[str, Any]:
    """A valid create payload; override any field."""
    data = dict(original_filename="holiday.mp4", original_filesize=1_024_000, clip_count=5,
                quality_preset="pro", enhancement_level="basic", platform_target="tiktok")
    data.update(overrides)
    return data


async def create_job(store: EventStore, user_id: str = "user-123", **overrides: Any):
    """Append a create event and return it."""
    team_id = overrides.pop("team_id", None)
    return await store.append(prepare_event("create", create_data(**overrides), user_id=user_id,
                                            team_id=team_id, actor=user_id))
