"""One WebSocket client of the publisher: a bounded drop-oldest queue and its sender task."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import resource

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

_LOGGER = logging.getLogger(__name__)


class Client:
    """One WebSocket client: a bounded drop-oldest queue and the task that drains it."""

    def __init__(self, connection: ServerConnection, initial: list[str], queue_size: int,
                 write_limit_bytes: int = 32 * 1024) -> None:
        self.connection = connection
        self.queue: collections.deque[tuple[str | None, str]] = collections.deque()
        self.queue_size = queue_size
        self.sources: frozenset[str] | None = None
        self._initial = initial
        self._wakeup = asyncio.Event()
        self._write_limit_bytes = write_limit_bytes
        self._sending = True
        """True while the sender task is sending (the snapshot first); False when idle."""

    def wants(self, source: str | None) -> bool:
        """Whether events of ``source`` pass this client's subscription (None: always)."""
        return source is None or self.sources is None or source in self.sources

    def push(self, source: str | None, text: str, data: bytes | None = None) -> bool:
        """Send or queue one serialized message; returns True if the oldest one was dropped.

        Fast path: when nothing is queued or being sent and the transport's write buffer is
        below the limit, the frame is written at once (``data``: ``text`` UTF-8 encoded,
        shared by every client of a broadcast), with no task switch per client. Otherwise
        the message waits in the bounded queue for the sender task, as before.
        """
        if not self.queue and not self._sending and self._writable():
            broadcast((self.connection,), text.encode() if data is None else data, text=True)
            return False
        dropped = len(self.queue) >= self.queue_size
        if dropped:
            self.queue.popleft()
        self.queue.append((source, text))
        self._wakeup.set()
        return dropped

    def refilter(self) -> None:
        """Forget queued events of sources the client no longer subscribes to."""
        self.queue = collections.deque(item for item in self.queue if self.wants(item[0]))

    def _writable(self) -> bool:
        """Open, no send in progress, write buffer below the limit: a write won't pile up."""
        connection = self.connection
        return (connection.protocol.state is State.OPEN and connection.send_in_progress is None
                and connection.transport.get_write_buffer_size() < self._write_limit_bytes)

    async def run_sender(self) -> None:
        """Send the connect-time snapshot, then drain the queue until the connection closes."""
        try:
            for text in self._initial:
                await self.connection.send(text)
            self._initial = []
            while True:
                self._sending = False
                await self._wakeup.wait()
                self._wakeup.clear()
                self._sending = True
                while self.queue:
                    _, text = self.queue.popleft()
                    await self.connection.send(text)
        except ConnectionClosed:
            return


FD_RESERVE = 48
"""Open files kept free for sources (ffmpeg pipes, sockets), HTTP requests and handshakes."""


def open_fd_count() -> int:
    """Files this process has open now (0 where /proc/self/fd is unavailable)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def client_cap(max_clients: int, fd_reserve: int = FD_RESERVE) -> int:
    """``max_clients``, lowered (with a warning) so clients never use the reserved files.

    The soft open-file limit is first raised toward the hard one as far as needed.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = open_fd_count()
    wanted = used + fd_reserve + max_clients
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
    if soft == resource.RLIM_INFINITY:
        return max_clients
    cap = max(1, min(max_clients, soft - used - fd_reserve))
    if cap < max_clients:
        _LOGGER.warning("server.max_clients lowered from %d to %d: the open-file limit is %d "
                        "and %d are kept for sources", max_clients, cap, soft, fd_reserve)
    return cap
