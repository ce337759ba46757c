"""HTTP responses of the publisher's routes (headers every response carries), and the
connection class that answers requests with a body (websockets would drop them silently)."""

from __future__ import annotations

import asyncio
import dataclasses
import http
from collections.abc import Awaitable, Sequence
from email.utils import formatdate

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

ALLOWED_METHODS = "GET, HEAD, OPTIONS"
MAX_HEAD_BYTES = 16 * 1024
"""Request heads up to this size are checked for a body (websockets limits them anyway)."""
LINGER_SECONDS = 2.0
"""How long a refused request's body is still read before the connection closes."""
HTML_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
            "connect-src 'self' ws: wss:; img-src 'self'")


async def without_body(pending: Awaitable[Response]) -> Response:
    """The awaited response without its body (HEAD of a route answered asynchronously)."""
    return dataclasses.replace(await pending, body=b"")


def http_response(status: int, body: str | bytes,
                  content_type: str = "text/plain; charset=utf-8",
                  extra: Sequence[tuple[str, str]] = ()) -> Response:
    """A complete HTTP response with genred's standard headers."""
    code = http.HTTPStatus(status)
    body = body.encode() if isinstance(body, str) else body
    headers = Headers([
        ("Date", formatdate(usegmt=True)), ("Connection", "close"),
        ("Content-Length", str(len(body))), ("Content-Type", content_type),
        ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), *extra,
    ])
    return Response(code.value, code.phrase, headers, body)


def is_upgrade(request: Request) -> bool:
    """Whether the request asks for a WebSocket upgrade."""
    return any(v.strip().lower() == "websocket" for v in request.headers.get_all("Upgrade"))


class BodylessConnection(ServerConnection):
    """A ServerConnection that answers a request carrying a body itself and closes.

    websockets refuses request bodies by closing the connection without a response; here
    POST/PUT/... get 405 (with Allow) and a GET/HEAD/OPTIONS with a body 400.
    """

    _head = b""
    _checked = False
    _discarding = False

    def data_received(self, data: bytes) -> None:
        """Hold the request head until it is complete, then answer or pass it on."""
        if self._discarding:
            return
        if self._checked:
            super().data_received(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0 and len(self._head) < MAX_HEAD_BYTES:
            return
        self._checked = True
        data, self._head = self._head, b""
        method = _method_with_body(data[:end]) if end >= 0 else None
        if method is None:
            super().data_received(data)
            return
        if method in ALLOWED_METHODS.split(", "):
            response = http_response(400, "request bodies are not supported\n")
        else:
            response = http_response(405, "method not allowed\n",
                                     extra=[("Allow", ALLOWED_METHODS)])
        self.transport.write(response.serialize())
        self._discarding = True  # read (and drop) the body: closing on unread data resets
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)


def _method_with_body(head: bytes) -> str | None:
    """The request's method if its head announces a body (Content-Length > 0 or chunked)."""
    request_line, *lines = head.split(b"\r\n")
    for line in lines:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return request_line.split(b" ", 1)[0].decode("ascii", "replace")
    return None
