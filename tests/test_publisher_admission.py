"""Publisher admission: max_clients then 503 with Retry-After, counted; a leaving client frees
its slot; failed handshakes, refused paths and plain HTTP hold none (issue 25)."""

import asyncio

import pytest
from websockets.exceptions import InvalidStatus

from daemon.publisher import Publisher
from tests import test_publisher
from tests.test_publisher import PublisherFactory, client, recv_json, within

make_publisher = test_publisher.make_publisher
"""The publisher fixture of test_publisher.py (a real server on port 0)."""


async def refused(publisher: Publisher, path: str = "/ws") -> InvalidStatus:
    """The InvalidStatus a client gets from a publisher that refuses it."""
    with pytest.raises(InvalidStatus) as info:
        await client(publisher, path)
    return info.value


async def wait_for_clients(publisher: Publisher, count: int) -> None:
    """Wait until the publisher counts ``count`` connected clients."""
    async def counted() -> None:
        while publisher.n_clients != count:
            await asyncio.sleep(0.01)

    await within(counted())


async def failed_handshake(port: int) -> bytes:
    """An upgrade request without a Sec-WebSocket-Key: admitted, then answered 400."""
    reader, writer = await within(asyncio.open_connection("127.0.0.1", port))
    writer.write(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    raw = await within(reader.read())
    writer.close()
    return raw


async def test_clients_up_to_max_clients_then_503(make_publisher: PublisherFactory) -> None:
    """Exactly max_clients connect; the next ones get 503, Retry-After: 10, and are counted."""
    publisher = await make_publisher(max_clients=2)
    first, second = await client(publisher), await client(publisher, "/")
    for ws in (first, second):
        assert (await recv_json(ws))["type"] == "hello"
    assert publisher.clients_refused == 0
    for expected in (1, 2):
        error = await refused(publisher)
        assert error.response.status_code == 503
        assert error.response.headers["Retry-After"] == "10"
        assert error.response.body == b"too many clients\n"
        assert publisher.clients_refused == expected
    assert publisher.n_clients == 2
    for ws in (first, second):
        await within(ws.close())


async def test_a_disconnected_client_frees_its_slot(make_publisher: PublisherFactory) -> None:
    """When a client leaves, the next one is admitted."""
    publisher = await make_publisher(max_clients=1)
    first = await client(publisher)
    await recv_json(first)
    assert (await refused(publisher)).response.status_code == 503
    await within(first.close())
    await wait_for_clients(publisher, 0)
    second = await client(publisher)
    assert (await recv_json(second))["type"] == "hello"
    assert publisher.clients_refused == 1
    await within(second.close())


async def test_failed_handshakes_do_not_hold_slots(make_publisher: PublisherFactory) -> None:
    """Handshakes that failed after admission are forgotten once the cap is reached."""
    publisher = await make_publisher(max_clients=2)
    for _ in range(3):
        assert (await failed_handshake(publisher.port)).startswith(b"HTTP/1.1 400 ")
    await asyncio.sleep(0.05)  # the server side of each closes
    first, second = await client(publisher), await client(publisher)
    for ws in (first, second):
        assert (await recv_json(ws))["type"] == "hello"
    assert (await refused(publisher)).response.status_code == 503
    assert publisher.clients_refused == 1
    for ws in (first, second):
        await within(ws.close())


async def test_refused_paths_and_plain_http_take_no_slot(make_publisher: PublisherFactory
                                                         ) -> None:
    """An upgrade on an unknown path (404) takes no slot; the one slot stays free."""
    publisher = await make_publisher(max_clients=1)
    assert (await refused(publisher, "/nowhere")).response.status_code == 404
    ws = await client(publisher)
    assert (await recv_json(ws))["type"] == "hello"
    assert publisher.clients_refused == 0
    await within(ws.close())
