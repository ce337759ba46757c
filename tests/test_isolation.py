"""The suite runs in its own home (tests/isolation.py): HOME/XDG redirected, real home watched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REAL_HOME, REPO_ROOT, TEST_HOME
from tests.isolation import XDG_DIRS, changes, snapshot


def test_home_and_xdg_point_into_the_test_home() -> None:
    assert Path(os.environ["HOME"]) == TEST_HOME != REAL_HOME
    for variable in XDG_DIRS:  # XDG_STATE_HOME: each test's own folder (conftest)
        assert not Path(os.environ[variable]).is_relative_to(REAL_HOME), variable
    assert Path(os.environ["XDG_CONFIG_HOME"]) == TEST_HOME / ".config"


def test_a_subprocess_and_the_daemon_defaults_see_the_test_home() -> None:
    code = ("import json, os, pathlib; from daemon.history import default_path; "
            "print(json.dumps([str(pathlib.Path.home()), os.path.expanduser('~/.config/chromium')"
            ", str(default_path()), os.environ.get('XDG_CACHE_HOME')]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    home, chromium, history, cache = (Path(p) for p in json.loads(result.stdout))
    assert home == TEST_HOME and chromium.is_relative_to(TEST_HOME)
    assert cache == TEST_HOME / ".cache" and not history.is_relative_to(REAL_HOME), history


def test_the_guard_sees_every_kind_of_change(tmp_path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "chromium").mkdir(parents=True)
    (home / ".config" / "chromium" / "Local State").write_text("{}")
    (home / ".cache" / "pip").mkdir(parents=True)
    (home / ".keras").mkdir()
    (home / ".keras" / "keras.json").write_text("{}")
    before = snapshot(home)
    (home / ".config" / "chromium" / "Local State").write_text('{"changed": 1}')
    (home / ".keras" / "keras.json").unlink()
    (home / ".cache" / "dconf").mkdir()
    (home / ".cache" / "dconf" / "user").write_bytes(b"x")
    (home / ".cache" / "pip" / "wheel").write_bytes(b"other users' installs")
    changed = changes(before, snapshot(home))
    assert {"added .cache/dconf/user", "modified .config/chromium/Local State",
            "removed .keras/keras.json"} <= set(changed)
    assert not [line for line in changed if "pip" in line], changed
