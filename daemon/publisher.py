"""WebSocket + HTTP front end: streams predictions/status to clients, serves /, /metrics, /healthz.

One ``websockets`` server answers both protocols on one port; plain HTTP GETs are handled in
``process_request``. Each client (daemon/client.py) has a bounded drop-oldest queue drained
by its own sender task, which awaits ``send`` so the transport's write-buffer high-water mark
(``write_limit``) stops draining for slow readers: per-client memory stays bounded by
``client_queue_size`` messages + ``write_limit_bytes`` + one message.

Incoming frames larger than ``max_message_bytes`` get an ``error`` event (code too_large) and
the connection stays open; frames above ``16 * max_message_bytes`` are refused by websockets
itself, which closes the connection with code 1009 (message too big).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import http
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from daemon import messages
from daemon.client import Client, client_cap
from daemon.config import ServerConfig
from daemon.messages import Prediction
from daemon.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from daemon.metrics import DaemonMetrics

_LOGGER = logging.getLogger(__name__)

INDEX_HTML_PATH = Path(__file__).with_name("web") / "index.html"
WEBSOCKET_PATHS = ("/", "/ws")
MAX_FRAME_FACTOR = 16
"""websockets' max_size is this many times max_message_bytes (bigger frames: close 1009)."""
_HTML_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
             "connect-src 'self' ws: wss:")


@dataclass
class _SourceRecord:
    """Latest known state of one source, with its serialized latest events."""

    kind: str
    """Source kind (device, url, stdin, tcp; 'unknown' if only predictions were seen)."""
    state: str
    """Current state (a SourceState)."""
    message: str | None = None
    """Detail of the current state."""
    status_json: str | None = None
    """Latest serialized status event."""
    prediction_json: str | None = None
    """Latest serialized prediction event."""


def _response(status: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8",
              extra: Sequence[tuple[str, str]] = ()) -> Response:
    code = http.HTTPStatus(status)
    body = body.encode() if isinstance(body, str) else body
    headers = Headers([
        ("Date", formatdate(usegmt=True)), ("Connection", "close"),
        ("Content-Length", str(len(body))), ("Content-Type", content_type),
        ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), *extra,
    ])
    return Response(code.value, code.phrase, headers, body)


def _is_upgrade(request: Request) -> bool:
    return any(v.strip().lower() == "websocket" for v in request.headers.get_all("Upgrade"))


class Publisher:
    """Serves live predictions over WebSocket and the page, /metrics and /healthz over HTTP."""

    def __init__(self, server: ServerConfig, *, model_name: str, labels: Sequence[str],
                 metrics: DaemonMetrics, health: Callable[[], dict[str, Any]],
                 write_limit_bytes: int = 32 * 1024, close_timeout_s: float = 1.0) -> None:
        self._host, self._requested_port = server.host, server.port
        self._model_name, self._labels = model_name, tuple(labels)
        self._metrics, self._health = metrics, health
        self._token = server.token or None
        self._allowed_origins = (None if server.allowed_origins is None
                                 else frozenset(server.allowed_origins))
        self._queue_size = server.client_queue_size
        self._max_message_bytes = server.max_message_bytes
        self._max_clients = server.max_clients
        self.clients_refused = 0
        """WebSocket handshakes answered 503 because max_clients were connected."""
        self._write_limit_bytes, self._close_timeout_s = write_limit_bytes, close_timeout_s
        self._sources: dict[str, _SourceRecord] = {}
        self._clients: set[Client] = set()
        self._admitted: set[ServerConnection] = set()
        """Connections past the handshake checks: clients, and handshakes in progress."""
        self.messages_dropped = 0
        """Messages dropped (oldest first) because a client read too slowly."""
        self._server: Server | None = None
        self._index_html = b""

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when 0 was requested)."""
        if self._server is None:
            raise RuntimeError("publisher not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Load the page and start listening."""
        self._index_html = INDEX_HTML_PATH.read_bytes()
        self._max_clients = client_cap(self._max_clients)
        self._server = await serve(
            self._handle, self._host, self._requested_port,
            process_request=self._process_method, compression=None,
            max_size=MAX_FRAME_FACTOR * self._max_message_bytes,
            write_limit=self._write_limit_bytes, close_timeout=self._close_timeout_s,
            server_header="genred")
        _LOGGER.info("publisher listening on http://%s:%s/", self._host, self.port)

    async def close(self) -> None:
        """Close every client with code 1001 and stop the server (bounded by close_timeout_s)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), self._close_timeout_s + 1.0)
        except TimeoutError:
            _LOGGER.warning("publisher: clients did not close in time; aborting them")
            for client in list(self._clients):
                client.connection.transport.abort()
            await asyncio.wait_for(server.wait_closed(), 1.0)

    def set_source_state(self, name: str, kind: str, state: str,
                         message: str | None = None) -> None:
        """Record a source's state and broadcast a ``status`` event."""
        state = messages.SourceState(state)
        status = messages.Status(source=name, state=state, message=message,
                                 wall_time=time.time())
        text = status.to_json()
        record = self._sources.setdefault(name, _SourceRecord(kind=kind, state=state))
        record.kind, record.state, record.message, record.status_json = kind, state, message, text
        self._broadcast(name, text)

    def publish_prediction(self, prediction: Prediction) -> None:
        """Record a source's latest prediction and broadcast it."""
        try:
            text = prediction.to_json()
        except ValueError:
            _LOGGER.warning("dropping non-finite prediction of source %s", prediction.source)
            return
        record = self._sources.setdefault(prediction.source,
                                          _SourceRecord(kind="unknown",
                                                        state=messages.SourceState.LIVE))
        record.prediction_json = text
        self._broadcast(prediction.source, text)

    @property
    def n_clients(self) -> int:
        """Connected WebSocket clients."""
        return len(self._clients)

    def client_backlogs(self) -> list[tuple[int, int]]:
        """Per client: (messages in its queue, bytes in its transport write buffer)."""
        return [(len(c.queue), c.connection.transport.get_write_buffer_size())
                for c in self._clients]

    def _broadcast(self, source: str, text: str) -> None:
        data = text.encode()
        dropped = sum(client.push(source, text, data) for client in self._clients
                      if client.wants(source))
        self.messages_dropped += dropped

    def _snapshot(self) -> list[str]:
        infos = tuple(messages.SourceInfo(name, r.kind, r.state, r.message)
                      for name, r in self._sources.items())
        hello = messages.Hello(protocol_version=messages.PROTOCOL_VERSION,
                               model=self._model_name, labels=self._labels, sources=infos,
                               server_time=time.time())
        texts = [hello.to_json()]
        for record in self._sources.values():
            texts += [t for t in (record.status_json, record.prediction_json) if t is not None]
        return texts

    async def _handle(self, connection: ServerConnection) -> None:
        client = Client(connection, self._snapshot(), self._queue_size,
                         self._write_limit_bytes)
        self._clients.add(client)
        sender = asyncio.create_task(client.run_sender())
        _LOGGER.debug("client %s connected", connection.remote_address)
        try:
            async for frame in connection:
                self._on_frame(client, frame)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            self._admitted.discard(connection)
            sender.cancel()
            await asyncio.wait([sender])
            _LOGGER.debug("client %s disconnected", connection.remote_address)

    def _on_frame(self, client: Client, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self._send_error(client, "binary_not_supported", "send JSON text frames")
            return
        if len(frame) > self._max_message_bytes or (
                len(frame.encode()) > self._max_message_bytes):
            self._send_error(client, "too_large",
                             f"messages are limited to {self._max_message_bytes} bytes")
            return
        try:
            message = messages.from_json(frame)
        except messages.ProtocolError as exc:
            self._send_error(client, exc.code, exc.message)
            return
        if not isinstance(message, messages.Subscribe):
            self._send_error(client, "unknown_type", "clients may only send 'subscribe'")
            return
        self._subscribe(client, message.sources)

    def _subscribe(self, client: Client, sources: tuple[str, ...] | None) -> None:
        if sources is None:
            client.sources = None
            return
        unknown = sorted(set(sources) - set(self._sources))
        client.sources = frozenset(s for s in sources if s in self._sources)
        client.refilter()
        if unknown:
            self._send_error(client, "unknown_source",
                             f"unknown sources {unknown}; known: {sorted(self._sources)}")

    def _send_error(self, client: Client, code: str, message: str) -> None:
        if client.push(None, messages.Error(code=code, message=message).to_json()):
            self.messages_dropped += 1

    def _process_method(self, connection: ServerConnection,
                        request: Request) -> Response | None:
        """GET as routed; HEAD without the body; OPTIONS: 204; anything else: 405."""
        allow = [("Allow", "GET, HEAD, OPTIONS")]
        if request.method == "OPTIONS":
            return _response(204, b"", extra=allow)
        if request.method not in ("GET", "HEAD"):
            return _response(405, "method not allowed\n", extra=allow)
        response = self._process_request(connection, request)
        if request.method == "GET":
            return response
        if response is None:  # a WebSocket upgrade must be a GET
            return _response(405, b"", extra=allow)
        return dataclasses.replace(response, body=b"")  # Content-Length stays the GET one's

    def _process_request(self, connection: ServerConnection,
                         request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            return self._healthz()
        denied = self._check_access(request, url.query)
        if denied is not None:
            return denied
        if _is_upgrade(request):
            if url.path not in WEBSOCKET_PATHS:
                return _response(404, "not found\n")
            return self._admit(connection)
        if url.path == "/":
            return _response(200, self._index_html, "text/html; charset=utf-8",
                             [("Content-Security-Policy", _HTML_CSP)])
        if url.path == "/metrics":
            return _response(200, self._metrics.render(), METRICS_CONTENT_TYPE)
        return _response(404, "not found\n")

    def _admit(self, connection: ServerConnection) -> Response | None:
        """None (go on with the handshake) below max_clients, else HTTP 503."""
        if len(self._admitted) >= self._max_clients:  # forget handshakes that failed
            self._admitted = {c for c in self._admitted if c.state is not State.CLOSED}
        if len(self._admitted) >= self._max_clients:
            self.clients_refused += 1
            return _response(503, "too many clients\n", extra=[("Retry-After", "10")])
        self._admitted.add(connection)
        return None

    def _healthz(self) -> Response:
        try:
            body = json.dumps(self._health(), default=str).encode()
        except Exception:
            _LOGGER.exception("health() failed")
            return _response(500, b'{"status":"error"}', "application/json")
        return _response(200, body, "application/json")

    def _check_access(self, request: Request, query: str) -> Response | None:
        origins = request.headers.get_all("Origin")
        if self._allowed_origins is not None and origins and (
                len(origins) > 1 or origins[0] not in self._allowed_origins):
            return _response(403, "origin not allowed\n")
        if self._token is not None and not self._token_ok(request, query):
            return _response(401, "unauthorized\n", extra=[("WWW-Authenticate", "Bearer")])
        return None

    def _token_ok(self, request: Request, query: str) -> bool:
        assert self._token is not None
        candidates = parse_qs(query, keep_blank_values=True).get("token", [])
        for value in request.headers.get_all("Authorization"):
            scheme, _, credential = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                candidates.append(credential.strip())
        expected = self._token.encode()
        matches = [hmac.compare_digest(c.encode(), expected) for c in candidates]
        return bool(matches) and all(matches)
