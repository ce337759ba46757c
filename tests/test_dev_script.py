"""scripts/dev's install logic: run installs the serve-only set, and a test install (a
superset) satisfies run without reinstalling (issue 23, 1 and 12)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

RECORDER = '#!/bin/sh\necho "$(basename "$0") $*" >> "$(dirname "$0")/../calls.log"\n'
"""Stands in for the venv's python (pip) and genred: records each call, succeeds."""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with scripts/dev, a pyproject.toml and a recording .venv."""
    if shutil.which("ffmpeg") is None or not list(Path("/usr/lib").glob("*/libportaudio.so.2")):
        pytest.skip("ffmpeg / libportaudio2 missing: scripts/dev would apt-get them")
    (tmp_path / "scripts").mkdir()
    shutil.copy2(REPO_ROOT / "scripts" / "dev", tmp_path / "scripts" / "dev")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "genred"):
        (bin_dir / name).write_text(RECORDER)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def stamp(project: Path, extras: str, seconds_after_pyproject: float) -> None:
    path = project / ".venv" / f".genred-{extras}"
    path.touch()
    mtime = (project / "pyproject.toml").stat().st_mtime + seconds_after_pyproject
    os.utime(path, (mtime, mtime))


def dev(project: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    result = subprocess.run([str(project / "scripts" / "dev"), *args], capture_output=True,
                            text=True, timeout=60)
    log = project / ".venv" / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return result, calls


def test_run_after_a_test_install_does_not_reinstall(project: Path) -> None:
    stamp(project, "test", 10)
    result, calls = dev(project, "run", "--quiet")
    assert result.returncode == 0, result.stderr
    assert calls == ["genred run --quiet"] and result.stderr == ""


def test_run_installs_the_serve_only_set_once(project: Path) -> None:
    result, calls = dev(project, "run")
    assert result.returncode == 0, result.stderr
    assert "python -m pip install -q -e ." in calls and calls[-1] == "genred run"
    assert not [c for c in calls if "[test]" in c or "tensorflow" in c], calls
    assert "serve-only" in result.stderr and "setuptools" not in result.stderr
    result, calls = dev(project, "run")
    assert calls == ["genred run"] and result.stderr == ""


def test_a_stale_test_stamp_does_not_count(project: Path) -> None:
    stamp(project, "test", -10)  # pyproject.toml changed since: the base set is installed
    result, calls = dev(project, "run")
    assert "python -m pip install -q -e ." in calls, (calls, result.stderr)
