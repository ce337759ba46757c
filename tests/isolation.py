"""The suite's own home: HOME and XDG directories redirected once, the real home watched.

tests/conftest.py calls :func:`redirect_home` when pytest imports it, before any test module
(TensorFlow, matplotlib, Chromium, PulseAudio, the daemon's history) reads HOME or XDG_*;
subprocesses inherit the environment. :func:`snapshot` and :func:`changes` let a session
fixture fail when anything under the real home changed while the suite ran.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

XDG_DIRS = {"XDG_CONFIG_HOME": ".config", "XDG_CACHE_HOME": ".cache",
            "XDG_DATA_HOME": ".local/share", "XDG_STATE_HOME": ".local/state"}
"""XDG base directories, relative to the home they default to."""
WATCHED = (".config", ".cache", ".local", ".keras", ".pki", ".matplotlib", ".mozilla")
"""Folders under the real home whose every file is compared (what tools write per user)."""
NOT_OURS = (".cache/pip", ".config/pip")
"""Written by package installs of other users of the machine, never by the suite."""

Snapshot = dict[str, tuple[int, int]]


def redirect_home() -> tuple[Path, Path]:
    """Point HOME and XDG_* at a fresh temporary folder; returns (real home, test home)."""
    real_home = Path(os.path.expanduser("~")).resolve()
    test_home = Path(tempfile.mkdtemp(prefix="genred-test-home-"))
    os.environ["HOME"] = str(test_home)
    for variable, relative in XDG_DIRS.items():
        os.environ[variable] = str(test_home / relative)
    return real_home, test_home


def snapshot(home: Path) -> Snapshot:
    """Relative path -> (size, mtime ns) of every file and folder in the watched folders."""
    result: Snapshot = {}
    for name in WATCHED:
        for folder, dirs, files in os.walk(home / name):
            relative = os.path.relpath(folder, home)
            dirs[:] = [d for d in dirs if os.path.join(relative, d) not in NOT_OURS]
            for entry in [folder, *(os.path.join(folder, f) for f in files)]:
                try:
                    stat = os.lstat(entry)
                except FileNotFoundError:
                    continue
                result[os.path.relpath(entry, home)] = (stat.st_size, stat.st_mtime_ns)
    return result


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """Paths added, removed or modified between two snapshots, sorted."""
    return sorted(
        [f"added {path}" for path in after.keys() - before.keys()]
        + [f"removed {path}" for path in before.keys() - after.keys()]
        + [f"modified {path}" for path in before.keys() & after.keys()
           if before[path] != after[path]])
