"""HTTP responses of the publisher's routes (headers every response carries)."""

from __future__ import annotations

import dataclasses
import http
from collections.abc import Awaitable, Sequence
from email.utils import formatdate

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

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
