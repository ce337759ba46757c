"""Bound glibc's malloc arenas in the daemon: many threads, one long-lived process.

glibc gives each thread that allocates under contention an arena of its own (up to 8 per
core) and rarely returns their freed memory. The daemon's threads (event loop, front ends,
inference, OpenVINO's workers) allocated in turn fragment them: 100 sources on one core grew
from 0.36 to 2.0 GB in 5 minutes with OpenVINO; with two arenas the same run held 0.62-0.64
GB and classified every window (bench/README). ``MALLOC_ARENA_MAX`` in the environment wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

_LOGGER = logging.getLogger(__name__)

ARENAS = 2
"""Arenas the daemon keeps (the main one and one more shared by the other threads)."""
M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (glibc malloc.h)."""


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas at ``arenas`` before threads start; False where it does not apply
    (not glibc, or ``MALLOC_ARENA_MAX`` set by the user)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): their allocators do not keep arenas
    applied = bool(mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(arenas)))
    _LOGGER.debug("malloc arenas limited to %d: %s", arenas, applied)
    return applied
