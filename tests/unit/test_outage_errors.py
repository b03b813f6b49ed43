"""Driver errors of a lost connection are DatabaseUnavailable, classified without a server.

The outages themselves (a server stopped under a running manager) are in tests/faults/test_outage_errors.py.
"""

from __future__ import annotations

import asyncpg
import pytest

from statemachine import DatabaseUnavailable
from store import translate_error


def test_internal_client_error_after_server_shutdown_is_transient() -> None:
    error = asyncpg.exceptions._base.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
    assert isinstance(translate_error(error), DatabaseUnavailable)


class _DropsOnExit:
    """An acquire context whose release fails the way asyncpg's does when the server dropped the socket."""

    async def __aenter__(self):
        return object()

    async def __aexit__(self, *exc_info):
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


@pytest.mark.parametrize("body_error", [None, asyncpg.ConnectionDoesNotExistError("lost"), ValueError("bug")])
async def test_a_connection_lost_while_being_released_is_database_unavailable(body_error) -> None:
    from videojobs.manager.session import translated_opening

    with pytest.raises(DatabaseUnavailable):
        async with translated_opening(_DropsOnExit()):
            if body_error is not None:
                raise body_error
