"""The daemon caps glibc's malloc arenas (fragmentation across its threads grew RSS from 0.36
to 2 GB at 100 sources on one core); counted with glibc's own malloc_info."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from daemon.malloc_arenas import limit_malloc_arenas

COUNT_ARENAS = textwrap.dedent("""
    import ctypes, sys, threading, time
    from daemon.malloc_arenas import limit_malloc_arenas
    if sys.argv[1] == "limit":
        assert limit_malloc_arenas(2)
    barrier = threading.Barrier(8)
    def allocate():
        barrier.wait()
        blocks = [bytearray(512) for _ in range(20000)]  # small blocks: from an arena
        time.sleep(0.2)
    threads = [threading.Thread(target=allocate) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    stream = libc.fopen(sys.argv[2].encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(sys.argv[2]).read().count("<heap nr="))
""")


def arenas_after_threads(mode: str, tmp_path, env: dict | None = None) -> int:
    """Arenas a fresh process has after 8 threads allocated at once."""
    result = subprocess.run([sys.executable, "-c", COUNT_ARENAS, mode, str(tmp_path / "i.xml")],
                            capture_output=True, text=True, check=True, env=env)
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_threads_share_two_arenas_once_limited(tmp_path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert arenas_after_threads("free", tmp_path, env) > 2  # glibc's default: one per thread
    assert arenas_after_threads("limit", tmp_path, env) <= 2


def test_the_users_setting_wins(monkeypatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
