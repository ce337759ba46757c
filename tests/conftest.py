"""Shared fixtures: the redirected home, paths to ../shared/data, small generated audio files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.isolation import changes, redirect_home, snapshot

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["GENRED_RUNTIME_PROBE"] = "0"
"""runtime auto without the first-start measuring (a probe per test artifact would cost
minutes); tests/test_runtime_choice.py measures for real with it cleared."""
REAL_HOME, TEST_HOME = redirect_home()
"""The suite never writes under the real home (tests/isolation.py); checked per session."""

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _real_home_untouched():
    """Fail the session when anything under the real home changed while it ran.

    GENRED_TEST_HOME_GUARD=0 turns the check off (tools/mutate.py: thousands of short sessions,
    where another process's write would count as a killed mutant); the redirection stays.
    """
    before = snapshot(REAL_HOME)
    yield
    changed = changes(before, snapshot(REAL_HOME))
    shutil.rmtree(TEST_HOME, ignore_errors=True)
    if changed and os.environ.get("GENRED_TEST_HOME_GUARD") != "0":
        pytest.fail(f"the suite wrote under the real home {REAL_HOME}: {changed[:20]}")


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory, monkeypatch):
    """Daemons started by tests keep their history in a temporary state directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """Path of ffmpeg (installed by scripts/dev)."""
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("ffmpeg is not installed (scripts/dev installs it)")
    return path


def make_tone_file(path: Path, frequency_hz: float, seconds: float, rate_hz: int,
                   extra: tuple[str, ...] = ()) -> Path:
    """Write a sine tone with ffmpeg's lavfi generator to ``path``."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency={frequency_hz}:duration={seconds}:sample_rate={rate_hz}",
         *extra, str(path)],
        check=True, timeout=60,
    )
    return path


@pytest.fixture(scope="session")
def vgg16_artifact(tmp_path_factory) -> Path:
    """The real VGG16 architecture with random weights, saved as a genred artifact."""
    from models import vgg16
    from models.artifact import contract_for, save_artifact

    labels = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
              "reggae", "rock"]
    model = vgg16.build_vgg16(labels, weights=None)
    contract = contract_for("test-vgg16-random", vgg16.MODEL_KIND, labels, vgg16.IMAGE_SHAPE,
                            training={"note": "random weights, for tests"})
    return save_artifact(model, tmp_path_factory.mktemp("artifacts") / "vgg16-random", contract)
