"""Drop one known line that a C library writes straight to file descriptor 2."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

XNNPACK_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
"""TFLite's C++ runtime prints this once per process, at the first allocate_tensors()."""
_LOCK = threading.Lock()
_DONE: set[bytes] = set()


@contextlib.contextmanager
def stderr_without(line: bytes) -> Iterator[None]:
    """Capture fd 2 for the block, then write back every line but ``line`` (none is lost)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [kept for kept in captured.read().splitlines(keepends=True)
                    if kept.rstrip(b"\r\n") != line]
            if kept:
                os.write(2, b"".join(kept))


def once_without(line: bytes, call: Callable[[], None]) -> None:
    """Run ``call``; the first time in this process, with ``line`` kept off stderr."""
    with _LOCK:
        if line in _DONE:
            call()
            return
        with stderr_without(line):
            call()
        _DONE.add(line)
