"""The API's one middleware (pure ASGI, outermost): request timing, the body-size limit, the catch-all that turns
any error into problem+json, and the 405 for a method an API path does not take.

Pure ASGI (not BaseHTTPMiddleware), so that streaming responses (SSE) pass through untouched and request bodies are
counted before anything parses them. One layer with one send wrapper: as four middlewares, every request went
through four calls and three send wrappers (bench/README.md, "the HTTP path, third round").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import ApiMetrics
from .problems import problem_for, problem_response

DEFAULT_MAX_BODY_BYTES = 64 * 1024


@dataclass
class _Exchange:
    """One request as the edge sees it: what went out so far."""

    status: int = 500  # a request that ends with nothing sent counts as a 500
    started: bool = False  # a response's start went out (an error after it cannot become a problem)
    replaced: bool = False  # the app's answer was replaced by a 405; its body is dropped


class ApiEdge:
    """Times every request under its route template; answers 413 for a body over `max_bytes` (declared or
    chunked) before anything reads it, and replays the body it counted to the app in one message; turns any
    exception that escapes the app into a problem response (500 only for real bugs, logged); and answers 405
    with the true `Allow` where a method an API path does not take would fall through to the dashboard's
    static files (404, or their own `Allow: GET, HEAD`). A 404 from a route itself (no such job) stays.
    """

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics, routes: list, max_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 prefix: str = "/api/"):
        self.app, self.metrics, self.routes, self.max_bytes, self.prefix = app, metrics, routes, max_bytes, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, exchange = time.perf_counter(), _Exchange()
        try:
            await self._serve(scope, receive, send, exchange)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(method=scope.get("method", "?"), route=route,
                                         status=str(exchange.status)).observe(time.perf_counter() - started)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, exchange: _Exchange) -> None:
        async def sent(message: Message) -> None:  # what reaches the client, whoever answers
            if message["type"] == "http.response.start":
                exchange.status, exchange.started = message["status"], True
            await send(message)

        replay = await self._counted_body(scope, receive, sent)
        if replay is None:
            return
        api = scope["path"].startswith(self.prefix)

        async def edge_send(message: Message) -> None:
            if api and message["type"] == "http.response.start" and message["status"] in (404, 405):
                allowed = self._allowed(scope)
                if allowed:
                    exchange.replaced = True
                    await _refuse_method(scope, replay, sent, allowed)
                    return
            if not exchange.replaced:
                await sent(message)

        try:
            await self.app(scope, replay, edge_send)
        except Exception as exc:
            if exchange.started:  # a streaming response already went out: nothing sane to add
                raise
            await problem_for(exc, scope.get("path"))(scope, replay, sent)

    async def _counted_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """The request's receive, its body read and counted first; None when it was refused (413) or the client
        left while sending it."""
        if not _may_have_body(scope):
            return receive
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse_size(scope, send)
            return None
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse_size(scope, send)
                return None
        return _replay(bytes(body), receive)

    async def _refuse_size(self, scope: Scope, send: Send) -> None:
        response = problem_response(413, "payload-too-large", "Payload too large",
                                    f"request bodies are limited to {self.max_bytes} bytes",
                                    instance=scope.get("path"), headers={"Connection": "close"})
        await response(scope, _no_receive, send)

    def _allowed(self, scope: Scope) -> list[str]:
        """The methods of the API routes that take the path, or none when one of them takes the method too."""
        allowed: set[str] = set()
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return []
            if match is Match.PARTIAL:
                allowed |= set(getattr(route, "methods", None) or ())
        return sorted(allowed)


async def _refuse_method(scope: Scope, receive: Receive, send: Send, allowed: list[str]) -> None:
    response = problem_response(405, "method-not-allowed", "Method not allowed",
                                f"{scope['method']} is not allowed here; allowed: {', '.join(allowed)}",
                                instance=scope["path"], headers={"Allow": ", ".join(allowed)})
    await response(scope, receive, send)


def _may_have_body(scope: Scope) -> bool:
    headers = dict(scope.get("headers") or ())
    return b"content-length" in headers or b"transfer-encoding" in headers or \
        scope.get("method") not in ("GET", "HEAD", "OPTIONS")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
