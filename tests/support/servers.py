"""Local servers for tests: a free port on loopback, and an ASGI app served by uvicorn on one.

Two ways to serve, for two kinds of test:
- `serve(app)`: in the test's own event loop (async tests that stream from the server);
- `serve_in_thread(app)`: in a thread with its own loop, for synchronous tests (hypothesis,
  schemathesis) whose app opens its own manager in its lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import uvicorn

from tests.support.waiting import poll_blocking, wait_until


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_socket(send_buffer: int | None = None) -> socket.socket:
    """A socket bound to a free loopback port, for uvicorn to listen on (no race for the port)."""
    listener = socket.socket()
    if send_buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    return listener


def _uvicorn(app, listener: socket.socket, lifespan: str) -> uvicorn.Server:
    port = listener.getsockname()[1]
    return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan))


@contextlib.asynccontextmanager
async def serve(app, *, lifespan: str = "on", send_buffer: int | None = None) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in this event loop; yields its base URL.

    `send_buffer` sets SO_SNDBUF on the listening socket (accepted connections inherit it), so
    that a response to a client that stops reading blocks the server after kilobytes, not megabytes.
    """
    listener = _listening_socket(send_buffer)
    server = _uvicorn(app, listener, lifespan)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    await wait_until(lambda: server.started or task.done(), what="uvicorn to start")
    if task.done():
        task.result()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.contextmanager
def serve_in_thread(app, *, lifespan: str = "on") -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in a daemon thread with its own event loop; yields its base URL."""
    listener = _listening_socket()
    server = _uvicorn(app, listener, lifespan)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    poll_blocking(lambda: server.started or not thread.is_alive(), 30, "uvicorn to start")
    assert thread.is_alive(), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
