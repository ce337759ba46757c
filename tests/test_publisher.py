"""Publisher: real server on 127.0.0.1 port 0, real websockets clients and raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from daemon.config import ServerConfig
from daemon.harness import metric_samples
from daemon.messages import Prediction
from daemon.metrics import DaemonMetrics
from daemon.publisher import MAX_FRAME_FACTOR, Publisher

TIMEOUT_S = 10.0
LABELS = ("blues", "jazz", "rock")
_T = TypeVar("_T")
PublisherFactory = Callable[..., Awaitable[Publisher]]


async def within(awaitable: Awaitable[_T], timeout_s: float = TIMEOUT_S) -> _T:
    """Await with a deadline so a hang fails the test instead of blocking it."""
    return await asyncio.wait_for(awaitable, timeout_s)


@pytest.fixture
async def make_publisher() -> AsyncIterator[PublisherFactory]:
    started: list[Publisher] = []

    async def factory(**settings: Any) -> Publisher:
        server_keys = {field.name for field in dataclasses.fields(ServerConfig)}
        server = ServerConfig(**{"host": "127.0.0.1", "port": 0, **{
            key: value for key, value in settings.items() if key in server_keys}})
        settings = {"model_name": "test-model", "labels": LABELS, "metrics": DaemonMetrics(),
                    "health": lambda: {"status": "ok", "sources": 0},
                    **{key: value for key, value in settings.items() if key not in server_keys}}
        publisher = Publisher(server, **settings)
        await within(publisher.start())
        started.append(publisher)
        return publisher

    yield factory
    for publisher in started:
        await within(publisher.close())


def prediction(source: str, index: int, genre: str = "rock") -> Prediction:
    probs = {label: (0.8 if label == genre else 0.1) for label in LABELS}
    return Prediction(source=source, window_start_ms=index * 1000,
                      window_end_ms=index * 1000 + 3000, wall_time=time.time(), genre=genre,
                      confidence=0.8, probabilities=probs, raw_probabilities=probs,
                      model="test-model")


async def client(publisher: Publisher, path: str = "/ws", **kwargs: Any) -> ClientConnection:
    url = f"ws://127.0.0.1:{publisher.port}{path}"
    return await within(connect(url, proxy=None, compression=None, **kwargs))


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await within(ws.recv()))


async def http_get(port: int, path: str, headers: dict[str, str] | None = None
                   ) -> tuple[int, dict[str, str], bytes]:
    """Raw HTTP/1.1 GET; returns (status, lower-cased headers, body)."""
    reader, writer = await within(asyncio.open_connection("127.0.0.1", port))
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    raw = await within(reader.read())
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in parsed.items()}, body


async def test_hello_then_current_state_then_live(make_publisher: PublisherFactory) -> None:
    publisher = await make_publisher()
    publisher.set_source_state("mic", "device", "warming_up")
    publisher.set_source_state("mic", "device", "live")
    publisher.set_source_state("radio", "url", "reconnecting", "HTTP 503")
    publisher.publish_prediction(prediction("mic", 1, "jazz"))
    ws = await client(publisher)
    hello = await recv_json(ws)
    assert hello["type"] == "hello" and hello["protocol_version"] == 1
    assert hello["model"] == "test-model" and hello["labels"] == list(LABELS)
    assert hello["sources"] == [
        {"name": "mic", "kind": "device", "state": "live", "message": None},
        {"name": "radio", "kind": "url", "state": "reconnecting", "message": "HTTP 503"}]
    snapshot = [await recv_json(ws) for _ in range(3)]
    assert [(m["type"], m["source"]) for m in snapshot] == [
        ("status", "mic"), ("prediction", "mic"), ("status", "radio")]
    assert snapshot[0]["state"] == "live" and snapshot[1]["genre"] == "jazz"
    publisher.publish_prediction(prediction("radio", 2, "blues"))
    live = await recv_json(ws)
    assert (live["type"], live["source"], live["genre"]) == ("prediction", "radio", "blues")
    await within(ws.close())


async def test_two_hundred_clients_get_the_same_prediction(
        make_publisher: PublisherFactory) -> None:
    publisher = await make_publisher()
    clients = await within(asyncio.gather(*(client(publisher) for _ in range(200))), 30)
    hellos = await within(asyncio.gather(*(recv_json(ws) for ws in clients)), 30)
    assert all(h["type"] == "hello" for h in hellos)
    assert publisher.n_clients == 200
    message = prediction("mic", 7)
    publisher.publish_prediction(message)
    received = await within(asyncio.gather(*(ws.recv() for ws in clients)), 30)
    assert set(received) == {message.to_json()}
    await within(asyncio.gather(*(ws.close() for ws in clients)), 30)
    for _ in range(100):
        if publisher.n_clients == 0:
            break
        await asyncio.sleep(0.02)
    assert publisher.n_clients == 0


async def barrier(ws: ClientConnection) -> None:
    """Send a malformed message and wait for its error: earlier messages were handled."""
    await within(ws.send("{barrier"))
    reply = await recv_json(ws)
    assert (reply["type"], reply["code"]) == ("error", "bad_json")


async def test_subscribe_filters_sources(make_publisher: PublisherFactory) -> None:
    publisher = await make_publisher()
    for name in ("a", "b"):
        publisher.set_source_state(name, "url", "live")
    ws = await client(publisher)
    for _ in range(3):  # hello + two statuses
        await recv_json(ws)
    await within(ws.send(json.dumps({"type": "subscribe", "sources": ["b", "nope"]})))
    error = await recv_json(ws)
    assert (error["type"], error["code"]) == ("error", "unknown_source")
    assert "nope" in error["message"]
    publisher.publish_prediction(prediction("a", 1))
    publisher.set_source_state("a", "url", "silent")
    publisher.publish_prediction(prediction("b", 2))
    got = await recv_json(ws)
    assert (got["type"], got["source"]) == ("prediction", "b")
    await within(ws.send(json.dumps({"type": "subscribe", "sources": None})))
    await barrier(ws)
    publisher.publish_prediction(prediction("a", 3))
    assert (await recv_json(ws))["source"] == "a"
    await within(ws.close())


@pytest.mark.parametrize(("payload", "code"), [
    ("{not json", "bad_json"),
    ("[1, 2, 3]", "bad_json"),
    (b"\x00\x01binary", "binary_not_supported"),
    ('{"type": "teleport"}', "unknown_type"),
    ('{"type": "status", "source": "a", "state": "live", "message": null, "wall_time": 1}',
     "unknown_type"),
    ('{"type": "subscribe", "sources": 5}', "bad_field"),
    ('{"type": "subscribe", "sources": ["' + "x" * 5000 + '"]}', "too_large"),
    ("é" * 2100, "too_large"),  # 2100 chars but 4200 UTF-8 bytes
])
async def test_bad_client_messages_get_errors_and_stay_connected(
        make_publisher: PublisherFactory, payload: str | bytes, code: str) -> None:
    publisher = await make_publisher(max_message_bytes=4096)
    ws = await client(publisher)
    assert (await recv_json(ws))["type"] == "hello"
    await within(ws.send(payload))
    error = await recv_json(ws)
    assert (error["type"], error["code"]) == ("error", code)
    publisher.publish_prediction(prediction("mic", 1))
    assert (await recv_json(ws))["type"] == "prediction"
    await within(ws.close())


async def test_huge_frame_is_refused_with_1009(make_publisher: PublisherFactory) -> None:
    publisher = await make_publisher(max_message_bytes=1024)
    ws = await client(publisher)
    await recv_json(ws)
    await within(ws.send("x" * (MAX_FRAME_FACTOR * 1024 + 1)))
    with pytest.raises(ConnectionClosed) as info:
        await within(ws.recv())
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def raw_silent_client(port: int, receive_buffer_bytes: int = 4096) -> socket.socket:
    """Complete a WebSocket handshake on a raw socket that will then never be read."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
    sock.setblocking(False)
    await within(loop.sock_connect(sock, ("127.0.0.1", port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
    await within(loop.sock_sendall(sock, request.encode()))
    received = b""
    while b"\r\n\r\n" not in received:
        received += await within(loop.sock_recv(sock, 1))
    assert received.startswith(b"HTTP/1.1 101"), received
    return sock


def big_prediction(index: int) -> Prediction:
    probs = {f"label_{n:02d}_with_a_long_descriptive_name": n / 1000 for n in range(40)}
    return Prediction(source="mic", window_start_ms=index, window_end_ms=index + 3000,
                      wall_time=time.time(), genre="label_00", confidence=0.5,
                      probabilities=probs, raw_probabilities=probs, model="test-model")


async def test_non_reading_client_memory_is_bounded(make_publisher: PublisherFactory) -> None:
    queue_size, write_limit = 64, 32 * 1024
    publisher = await make_publisher(client_queue_size=queue_size,
                                     write_limit_bytes=write_limit)
    sock = await raw_silent_client(publisher.port)
    message_bytes = len(big_prediction(0).to_json())
    assert 1800 < message_bytes < 4000
    bound_bytes = queue_size * message_bytes + write_limit + 2 * message_bytes
    for index in range(2000):
        publisher.publish_prediction(big_prediction(index))
        if index % 100 == 99:
            [(queued, buffered)] = publisher.client_backlogs()
            # written at once while the transport buffer is below the limit, then queued
            assert queued <= queue_size
            assert queued * message_bytes + buffered <= bound_bytes
            await asyncio.sleep(0.005)
            [(queued, buffered)] = publisher.client_backlogs()
            assert queued <= queue_size and buffered <= write_limit + 2 * message_bytes
    await asyncio.sleep(0.2)
    [(queued, buffered)] = publisher.client_backlogs()
    assert queued * message_bytes + buffered <= bound_bytes
    assert queued > 0 or buffered > 0, "a non-reading client cannot have drained everything"
    assert publisher.messages_dropped > 1000
    sock.close()


async def test_token_required(make_publisher: PublisherFactory) -> None:
    publisher = await make_publisher(token="s3cret")
    for kwargs in ({}, {"additional_headers": {"Authorization": "Bearer wrong"}}):
        with pytest.raises(InvalidStatus) as info:
            await client(publisher, **kwargs)
        assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as info:
        await client(publisher, "/ws?token=nope")
    assert info.value.response.status_code == 401
    by_query = await client(publisher, "/ws?token=s3cret")
    by_header = await client(publisher, additional_headers={"Authorization": "Bearer s3cret"})
    for ws in (by_query, by_header):
        assert (await recv_json(ws))["type"] == "hello"
        await within(ws.close())
    status, _, body = await http_get(publisher.port, "/metrics")
    assert status == 401 and b"genred" not in body
    status, _, body = await http_get(publisher.port, "/")
    assert status == 401 and b"<html" not in body
    assert (await http_get(publisher.port, "/metrics?token=s3cret"))[0] == 200
    assert (await http_get(publisher.port, "/", {"Authorization": "Bearer s3cret"}))[0] == 200
    assert (await http_get(publisher.port, "/healthz"))[0] == 200


async def test_disallowed_origin_is_forbidden(make_publisher: PublisherFactory) -> None:
    publisher = await make_publisher(allowed_origins=["http://good.example"])
    with pytest.raises(InvalidStatus) as info:
        await client(publisher, origin=Origin("http://evil.example"))
    assert info.value.response.status_code == 403
    status, _, _ = await http_get(publisher.port, "/", {"Origin": "http://evil.example"})
    assert status == 403
    for kwargs in ({"origin": Origin("http://good.example")}, {}):
        ws = await client(publisher, **kwargs)
        assert (await recv_json(ws))["type"] == "hello"
        await within(ws.close())


async def test_http_routes(make_publisher: PublisherFactory) -> None:
    metrics = DaemonMetrics()
    publisher = await make_publisher(metrics=metrics)
    metrics.set_source_state("mic", "live")
    publisher.set_source_state("mic", "device", "live")
    status, headers, body = await http_get(publisher.port, "/healthz")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"status": "ok", "sources": 0}
    status, headers, body = await http_get(publisher.port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert ({"source": "mic", "state": "live"}, 1) in metric_samples(
        body.decode())["genred_source_state"]
    status, headers, body = await http_get(publisher.port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert "<html" in page and "new WebSocket(" in page and "token" in page
    assert "http://" not in page and "https://" not in page  # no external assets
    assert (await http_get(publisher.port, "/nope"))[0] == 404
    assert int(headers["content-length"]) == len(body)


async def test_close_sends_1001_promptly(make_publisher: PublisherFactory) -> None:
    publisher = await make_publisher()
    ws = await client(publisher)
    await recv_json(ws)
    silent = await raw_silent_client(publisher.port)
    for index in range(300):
        publisher.publish_prediction(big_prediction(index))
    started_s = time.monotonic()
    await within(publisher.close(), 5)
    assert time.monotonic() - started_s < 3.0
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(1000):  # the predictions published before close, then the close frame
            await within(ws.recv())
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert publisher.client_backlogs() == []
    silent.close()


async def test_bursts_reach_reading_clients_in_order(make_publisher: PublisherFactory) -> None:
    """Messages written at once (idle client) and queued ones (busy client) keep their order."""
    publisher = await make_publisher(client_queue_size=1000)
    clients = [await client(publisher) for _ in range(3)]
    for ws in clients:
        assert (await recv_json(ws))["type"] == "hello"
    for index in range(300):
        publisher.publish_prediction(prediction("radio", index))
        if index % 50 == 0:
            await asyncio.sleep(0)
    for ws in clients:
        received = []
        while len(received) < 300:
            message = await within(recv_json(ws))
            if message["type"] == "prediction":
                received.append(message["window_start_ms"])
        assert received == sorted(received) and len(set(received)) == 300
        await ws.close()


# Admission: max_clients WebSocket clients, then 503 with Retry-After; slots free up.
