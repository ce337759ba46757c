"""WebSocket + HTTP front end: live events; /, /metrics, /healthz, /history, spectrogram PNGs.

One ``websockets`` server answers both protocols on one port; plain HTTP GETs are handled in
``process_request`` (/history and the spectrograms await callbacks working in threads). Each
client (daemon/client.py) has a bounded drop-oldest queue drained by its own sender task, which
awaits ``send`` so the transport's write-buffer high-water mark (``write_limit``) stops
draining for slow readers: per-client memory stays bounded by ``client_queue_size``
messages + ``write_limit_bytes`` + one message.

Incoming frames larger than ``max_message_bytes`` get an ``error`` event (code too_large) and
the connection stays open; frames above ``16 * max_message_bytes`` are refused by websockets
itself, which closes the connection with code 1009 (message too big).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from daemon import messages
from daemon.client import Client, client_cap
from daemon.config import ServerConfig
from daemon.health_view import public_health
from daemon.history_query import next_page
from daemon.http_responses import (
    ALLOWED_METHODS,
    HTML_CSP,
    BodylessConnection,
    http_response,
    is_upgrade,
    without_body,
)
from daemon.messages import Prediction
from daemon.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from daemon.metrics import DaemonMetrics
from daemon.spectrogram import source_of_path

_LOGGER = logging.getLogger(__name__)

INDEX_HTML_PATH = Path(__file__).with_name("web") / "index.html"
WEBSOCKET_PATHS = ("/", "/ws")
MAX_FRAME_FACTOR = 16
"""websockets' max_size is this many times max_message_bytes (bigger frames: close 1009)."""

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


HistoryQuery = Callable[[dict[str, list[str]]], Awaitable[list[dict[str, Any]]]]
"""Query parameters of GET /history -> JSON-ready rows (ValueError on a bad parameter)."""
SpectrogramQuery = Callable[[str], Awaitable[Response]]
"""Source name -> the answer of GET /sources/<name>/spectrogram.png."""


class Publisher:
    """Serves live predictions over WebSocket and the page, /metrics and /healthz over HTTP."""

    def __init__(self, server: ServerConfig, *, model_name: str, labels: Sequence[str],
                 metrics: DaemonMetrics, health: Callable[[], dict[str, Any]],
                 history: HistoryQuery | None = None,
                 spectrogram: SpectrogramQuery | None = None,
                 write_limit_bytes: int = 32 * 1024, close_timeout_s: float = 1.0) -> None:
        self._host, self._requested_port = server.host, server.port
        self._model_name, self._labels = model_name, tuple(labels)
        self._metrics, self._health, self._history = metrics, health, history
        self._spectrogram = spectrogram
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
            process_request=self._process_method, create_connection=BodylessConnection,
            compression=None,
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
            message = messages.from_json(frame, messages.CLIENT_TYPES)
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
        allow = [("Allow", ALLOWED_METHODS)]
        if request.method == "OPTIONS":
            return http_response(204, b"", extra=allow)
        if request.method not in ("GET", "HEAD"):
            return http_response(405, "method not allowed\n", extra=allow)
        response = self._process_request(connection, request)
        if request.method == "GET":
            return response
        if response is None:  # a WebSocket upgrade must be a GET
            return http_response(405, b"", extra=allow)
        if inspect.isawaitable(response):
            return without_body(response)
        return dataclasses.replace(response, body=b"")  # Content-Length stays the GET one's

    def _process_request(self, connection: ServerConnection,
                         request: Request) -> Response | Awaitable[Response] | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":  # no token needed; without it only states (health_view)
            return self._healthz(full=self._token is None or self._token_ok(request, url.query))
        denied = self._check_access(request, url.query)
        if denied is not None:
            return denied
        if is_upgrade(request):
            if url.path not in WEBSOCKET_PATHS:
                return http_response(404, "not found\n")
            return self._admit(connection)
        if url.path == "/":
            return http_response(200, self._index_html, "text/html; charset=utf-8",
                             [("Content-Security-Policy", HTML_CSP)])
        if url.path == "/metrics":
            return http_response(200, self._metrics.render(), METRICS_CONTENT_TYPE)
        if url.path == "/history" and self._history is not None:
            return self._history_response(url.query)
        source = source_of_path(url.path)
        if source is not None and self._spectrogram is not None:
            return self._spectrogram(source)
        return http_response(404, "not found\n")

    async def _history_response(self, query: str) -> Response:
        """GET /history: a page of JSON rows (Link: the next); 400 on bad parameters, 503 if
        the database fails."""
        assert self._history is not None
        params = parse_qs(query, keep_blank_values=True)
        try:
            rows = await self._history(params)
        except ValueError as error:
            return http_response(400, json.dumps({"error": str(error)}), "application/json")
        except Exception as error:
            _LOGGER.warning("history query failed: %s", error)
            return http_response(503, json.dumps({"error": f"{type(error).__name__}: {error}"}),
                             "application/json")
        body = await asyncio.to_thread(json.dumps, rows)  # a page of rows: off the loop
        following = next_page(params, rows)
        link = [("Link", f'</history?{following}>; rel="next"')] if following else []
        return http_response(200, body, "application/json", link)

    def _admit(self, connection: ServerConnection) -> Response | None:
        """None (go on with the handshake) below max_clients, else HTTP 503."""
        if len(self._admitted) >= self._max_clients:  # forget handshakes that failed
            self._admitted = {c for c in self._admitted if c.state is not State.CLOSED}
        if len(self._admitted) >= self._max_clients:
            self.clients_refused += 1
            return http_response(503, "too many clients\n", extra=[("Retry-After", "10")])
        self._admitted.add(connection)
        return None

    def _healthz(self, full: bool = True) -> Response:
        try:
            document = self._health() if full else public_health(self._health())
            body = json.dumps(document, default=str).encode()
        except Exception:
            _LOGGER.exception("health() failed")
            return http_response(500, b'{"status":"error"}', "application/json")
        return http_response(200, body, "application/json")

    def _check_access(self, request: Request, query: str) -> Response | None:
        origins = request.headers.get_all("Origin")
        if self._allowed_origins is not None and origins and (
                len(origins) > 1 or origins[0] not in self._allowed_origins):
            return http_response(403, "origin not allowed\n")
        if self._token is not None and not self._token_ok(request, query):
            return http_response(401, "unauthorized\n", extra=[("WWW-Authenticate", "Bearer")])
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
