"""Hostile input, fuzzed with hypothesis, against a running daemon (in-process Service with
the fake model, on its own thread): WebSocket client messages and raw PCM on a tcp source.
Never a crash; every bad message gets an `error` event on a connection that stays up; the
PCM source logs a warning, keeps accepting producers, and predictions go on afterwards."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from daemon import messages
from daemon.assembly import build_service
from daemon.config import config_from_dict
from daemon.harness import fake_model, free_port

pytestmark = pytest.mark.timeout(300)
MAX_MESSAGE_BYTES = 4096
CHANNELS = 2                      # f32le stereo: a frame is 8 bytes, so lengths can be wrong
FRAME_BYTES = 4 * CHANNELS
SOURCE = "pcm"
PROBE = json.dumps({"type": "probe"})
FUZZ_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])


@dataclass
class RunningDaemon:
    """A Service running on its own event loop in a background thread."""

    pcm_port: int
    service: Any = None
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    error: BaseException | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def ws_url(self) -> str:
        assert self.service is not None
        return f"ws://127.0.0.1:{self.service.publisher.port}/"

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive() and self.error is None


def _serve(daemon: RunningDaemon) -> None:
    async def main() -> None:
        config = config_from_dict({
            "server": {"port": 0, "max_message_bytes": MAX_MESSAGE_BYTES},
            "window": {"hop_seconds": 1.0},
            "sources": [{"name": SOURCE, "kind": "tcp", "port": daemon.pcm_port,
                         "sample_rate_hz": 44100, "channels": CHANNELS,
                         "pcm_format": "f32le"}]})
        daemon.service = build_service(config, fake_model())
        daemon.service.create_sources()
        await daemon.service.start_server()
        daemon.loop, daemon.stop = asyncio.get_running_loop(), asyncio.Event()
        daemon.ready.set()
        await daemon.service.run(daemon.stop)

    try:
        asyncio.run(main())
    except BaseException as error:  # reported by the fixture
        daemon.error = error
        daemon.ready.set()


@pytest.fixture(scope="module")
def daemon() -> Iterator[RunningDaemon]:
    running = RunningDaemon(pcm_port=free_port())
    running.thread = threading.Thread(target=_serve, args=(running,), daemon=True)
    running.thread.start()
    assert running.ready.wait(30) and running.error is None, running.error
    try:
        yield running
    finally:
        if running.loop is not None and running.stop is not None:
            running.loop.call_soon_threadsafe(running.stop.set)
        running.thread.join(15)
        assert not running.thread.is_alive(), "the service did not stop"
        assert running.error is None, repr(running.error)


# --- helpers --------------------------------------------------------------------------------

def connect_producer(port: int, timeout_seconds: float = 10.0) -> socket.socket:
    """A PCM producer connection the source accepted (it refuses while the last one drains)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            sock = socket.create_connection(("127.0.0.1", port), 5)
        except ConnectionRefusedError:  # the source starts listening when the service runs
            time.sleep(0.05)
            continue
        sock.settimeout(0.1)
        try:
            refused = sock.recv(1) == b""   # the source closes a refused producer at once
        except TimeoutError:
            sock.settimeout(5)
            return sock
        except ConnectionResetError:
            refused = True
        sock.close()
        assert refused
        time.sleep(0.02)
    raise AssertionError("the tcp source accepted no producer for 10 s")


def reset_connection(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (a producer that crashed)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def tone_f32_stereo(seconds: float, frequency_hz: float = 9000.0) -> bytes:
    t = np.arange(int(seconds * 44100)) / 44100
    mono = (0.3 * np.sin(2 * np.pi * frequency_hz * t)).astype("<f4")
    return np.repeat(mono, CHANNELS).tobytes()


def recv_json(ws: ClientConnection, timeout_seconds: float = 10.0) -> dict:
    return json.loads(ws.recv(timeout=timeout_seconds))


def assert_predictions_continue(daemon: RunningDaemon, seconds: float = 31.0) -> dict:
    """Feed a clean tone through a fresh producer; a new prediction must follow."""
    assert daemon.alive()
    # max_queue=None: unread predictions must not stall the close handshake (10 s timeout)
    with connect(daemon.ws_url, open_timeout=10, max_queue=None) as ws:
        sent = time.time()
        producer = connect_producer(daemon.pcm_port)
        try:
            producer.sendall(tone_f32_stereo(seconds))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                message = recv_json(ws)
                if message["type"] == "prediction" and message["wall_time"] > sent:
                    assert max(message["raw_probabilities"].items(), key=lambda kv: kv[1])[0] \
                        == "high"
                    return message
        finally:
            producer.close()
    raise AssertionError("no prediction after clean audio")


def expected_error(frame: str | bytes) -> str | None:
    """The error code the daemon must answer ``frame`` with (None: a valid subscribe)."""
    if isinstance(frame, bytes):
        return "binary_not_supported"
    if len(frame.encode()) > MAX_MESSAGE_BYTES:
        return "too_large"
    try:
        message = messages.from_json(frame, messages.CLIENT_TYPES)
    except messages.ProtocolError as error:
        return error.code
    if not isinstance(message, messages.Subscribe):
        return "unknown_type"
    if message.sources is None or set(message.sources) <= {SOURCE}:
        return None
    return "unknown_source"


def errors_until_probe(ws: ClientConnection) -> list[dict]:
    """Send a probe (always an unknown_type error) and return the errors received before it."""
    ws.send(PROBE)
    errors: list[dict] = []
    while True:
        message = recv_json(ws)
        if message["type"] != "error":
            continue
        if message["code"] == "unknown_type" and "'probe'" in message["message"]:
            return errors
        errors.append(message)


# --- strategies -----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)
TYPES = st.sampled_from(["subscribe", "hello", "prediction", "status", "error", "", "SUBSCRIBE"])
SHAPED = st.fixed_dictionaries({"type": TYPES}, optional={"sources": JSON_VALUES | st.lists(
    st.sampled_from([SOURCE, "nope", ""]), max_size=3), "extra": JSON_VALUES})


def _nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


CLIENT_FRAMES = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    JSON_VALUES.map(lambda v: json.dumps(v, allow_nan=True)),
    SHAPED.map(lambda v: json.dumps(v, allow_nan=True)),
    st.builds(_nested, st.integers(1, 10_000), st.sampled_from(["list", "dict"])),
    st.integers(MAX_MESSAGE_BYTES - 16, 16 * MAX_MESSAGE_BYTES - 64).map(
        lambda n: json.dumps({"type": "subscribe", "sources": ["x" * n]})[:n]),
)


# --- WebSocket messages -------------------------------------------------------------------

@FUZZ_SETTINGS
@given(frames=st.lists(CLIENT_FRAMES, min_size=1, max_size=6))
def test_fuzzed_client_messages_get_errors_and_the_connection_stays(daemon, frames):
    with connect(daemon.ws_url, open_timeout=10, max_size=None) as ws:
        assert recv_json(ws)["type"] == "hello"
        for frame in frames:
            ws.send(frame)
            errors = errors_until_probe(ws)
            expected = expected_error(frame)
            assert [e["code"] for e in errors] == ([expected] if expected else []), frame[:200]
            ws.send('{"type": "subscribe", "sources": null}')
    assert daemon.alive()


def test_frame_over_the_hard_limit_closes_only_that_client(daemon):
    with connect(daemon.ws_url, open_timeout=10, max_size=None) as ws:
        recv_json(ws)
        ws.send("x" * (16 * MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    prediction = assert_predictions_continue(daemon)
    assert prediction["source"] == SOURCE


def test_predictions_go_on_after_the_message_fuzzing(daemon):
    with connect(daemon.ws_url, open_timeout=10) as ws:
        recv_json(ws)
        for frame in ("{", b"\x00" * 10, "[" * 3000, '{"type": "subscribe", "sources": 1}'):
            ws.send(frame)
        codes = [e["code"] for e in errors_until_probe(ws)]
        assert codes == ["bad_json", "binary_not_supported", "bad_json", "bad_field"]
    assert_predictions_continue(daemon)


# --- raw PCM ----------------------------------------------------------------------------------

def test_non_finite_and_huge_f32_samples_are_zeroed_or_clipped_with_a_warning(daemon, caplog):
    special = np.array([np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, 2.0, -7.5],
                       dtype="<f4")
    with caplog.at_level(logging.WARNING, logger="daemon.sources.decoding"):
        producer = connect_producer(daemon.pcm_port)
        producer.sendall(np.tile(special, 44100).tobytes())
        producer.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
                "NaN/inf" in caplog.text and "clipped" in caplog.text):
            time.sleep(0.05)
    assert "NaN/inf PCM samples replaced by 0" in caplog.text
    assert "clipped to [-1, 1]" in caplog.text
    assert_predictions_continue(daemon)


PCM_OPERATIONS = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=4096)),
    st.tuples(st.just("f32"), st.lists(st.floats(width=32), max_size=300)),
    st.tuples(st.just("odd"), st.integers(1, FRAME_BYTES - 1)),
    st.tuples(st.just("empty"), st.none()),
    st.tuples(st.just("fin"), st.none()),
    st.tuples(st.just("reset"), st.none()),
)


def _apply(operation: tuple[str, Any], sock: socket.socket, port: int) -> socket.socket:
    kind, value = operation
    if kind == "bytes":
        sock.sendall(value)
    elif kind == "f32":
        sock.sendall(np.asarray(value, dtype="<f4").tobytes())
    elif kind == "odd":
        sock.sendall(b"\x7f" * value)
    elif kind == "empty":
        sock.send(b"")
    else:
        if kind == "reset":
            reset_connection(sock)
        else:
            sock.close()
        return connect_producer(port)
    return sock


@FUZZ_SETTINGS
@given(operations=st.lists(PCM_OPERATIONS, min_size=1, max_size=12))
def test_fuzzed_pcm_never_stops_the_source(daemon, operations):
    sock = connect_producer(daemon.pcm_port)
    try:
        for operation in operations:
            sock = _apply(operation, sock, daemon.pcm_port)
    finally:
        sock.close()
    assert daemon.alive()
    health = daemon.service.health()["sources"][0]
    assert health["state"] not in ("error", "ended"), health


def test_pcm_source_still_predicts_after_the_fuzzing(daemon):
    prediction = assert_predictions_continue(daemon)
    assert prediction["source"] == SOURCE
