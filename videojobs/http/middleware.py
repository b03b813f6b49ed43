"""Pure ASGI middleware: the body-size limit and the catch-all that turns any error into problem+json.

Both are plain ASGI (not BaseHTTPMiddleware) so that streaming responses (SSE) pass
through untouched and request bodies are counted before anything parses them.
"""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem_for, problem_response

DEFAULT_MAX_BODY_BYTES = 64 * 1024


class BodySizeLimit:
    """413 for request bodies over `max_bytes`, declared (Content-Length) or chunked.

    A declared length over the limit is refused before reading anything. Otherwise
    the body is read here, counted, and replayed to the app in one message: the app
    never sees a byte of a body that is too large.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_body(scope):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._refuse(scope, send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        response = problem_response(413, "payload-too-large", "Payload too large",
                                    f"request bodies are limited to {self.max_bytes} bytes",
                                    instance=scope.get("path"), headers={"Connection": "close"})
        await response(scope, _no_receive, send)


class CatchAll:
    """Any exception that escapes the app becomes a problem response (500 only for real bugs, logged)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # a streaming response already went out: nothing sane to add
                raise
            await problem_for(exc, scope.get("path"))(scope, receive, send)


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


class MethodNotAllowed:
    """405 with the true `Allow` for a method an API path does not take.

    Without it, a method the API routes of a path do not take falls through to the dashboard's
    static files mounted at `/`, which answer 404 (GET of a POST-only path: no such file) or 405
    with their own `Allow: GET, HEAD` (OPTIONS). Only those two answers are looked at (nothing is
    matched for the requests that succeed): when no API route takes the request's method and some
    take the path, the answer is replaced by a 405 whose `Allow` names their methods. A 404 from
    a route itself (no such job) stays: that route took the method.
    """

    def __init__(self, app: ASGIApp, routes: list, prefix: str = "/api/"):
        self.app, self.routes, self.prefix = app, routes, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        replaced = False

        async def checking_send(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] in (404, 405):
                allowed = self._allowed(scope)
                if allowed:
                    replaced = True
                    await self._refuse(scope, receive, send, allowed)
                    return
            if not replaced:  # the replaced response's body is dropped
                await send(message)

        await self.app(scope, receive, checking_send)

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

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, allowed: list[str]) -> None:
        response = problem_response(405, "method-not-allowed", "Method not allowed",
                                    f"{scope['method']} is not allowed here; allowed: {', '.join(allowed)}",
                                    instance=scope["path"], headers={"Allow": ", ".join(allowed)})
        await response(scope, receive, send)
