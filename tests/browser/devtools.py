"""A minimal Chrome DevTools Protocol client over a plain socket (RFC 6455 text frames only).

The `websockets` package is not a dependency; this is the few lines the browser test needs:
connect to a page target, send a command, read messages until its answer arrives.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import struct
from typing import Any
from urllib.parse import urlsplit


class DevTools:
    """`DevTools(ws_url).call("Runtime.evaluate", expression=...)` returns the command's result."""

    def __init__(self, ws_url: str, timeout: float = 15.0):
        parts = urlsplit(ws_url)
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self._sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._sock.recv(1)
            if not chunk:
                raise ConnectionError("devtools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"devtools refused the websocket: {head.decode(errors='replace')}")
        self._ids = itertools.count(1)
        self.browser_url: str | None = None  # the browser target's own endpoint, for Browser.* commands

    def call(self, method: str, **params: Any) -> dict:
        """Send one command and wait for its result (events in between are dropped)."""
        command_id = next(self._ids)
        self._send(json.dumps({"id": command_id, "method": method, "params": params}).encode())
        while True:
            message = json.loads(self._receive())
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def _send(self, payload: bytes) -> None:
        header = bytearray([0x81])  # FIN, text frame
        length = len(payload)
        if length < 126:
            header.append(0x80 | length)
        elif length < 2**16:
            header += bytes([0x80 | 126]) + struct.pack(">H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", length)
        mask = os.urandom(4)
        self._sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _receive(self) -> bytes:
        message = b""
        while True:
            first, second = self._exactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", self._exactly(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", self._exactly(8))
            payload = self._exactly(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("devtools closed the websocket")
            if opcode in (0x9, 0xA):  # ping/pong: nothing to do for this client
                continue
            message += payload
            if first & 0x80:
                return message

    def _exactly(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = self._sock.recv(min(count - len(data), 1 << 20))
            if not chunk:
                raise ConnectionError("devtools connection closed")
            data += chunk
        return bytes(data)
