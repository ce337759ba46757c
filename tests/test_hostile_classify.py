"""Hostile inputs to ``genred classify`` and ``genred export`` (issue 21): an unreachable or
malformed --cluster (F8), a truncated model.tflite (F10), streams that never send (F5)."""

from __future__ import annotations

import re
import shutil
import time

import pytest

from daemon.harness import free_port
from models.audio import NETWORK_STALL_SECONDS
from tests.conftest import REPO_ROOT
from tests.test_hostile_cli import assert_one_line_error, genred, silent_server  # noqa: F401
from training.cluster import CONNECT_TIMEOUT_SECONDS

pytestmark = pytest.mark.timeout(180)
DEFAULT_MODEL = REPO_ROOT / "models" / "genred-default"
CLIP = REPO_ROOT.parent / "shared" / "data" / "gtzan-mini" / "blues" / "blues.00000.flac"


@pytest.mark.parametrize(("cluster", "expected"), [
    ("tcp://127.0.0.1:1", "no Dask scheduler reached"),
    ("not a url", "no Dask scheduler reached (expected tcp://HOST:PORT)"),
])
def test_an_unreachable_cluster_is_one_line_within_the_connect_timeout(tmp_path, cluster,
                                                                      expected):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    started = time.monotonic()
    result = genred("classify", str(DEFAULT_MODEL), str(audio), "--cluster", cluster)
    assert_one_line_error(result, expected)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert time.monotonic() - started < CONNECT_TIMEOUT_SECONDS + 15


@pytest.fixture
def truncated_model(tmp_path):
    """A copy of genred-default whose model.tflite lost its second half."""
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, model)
    tflite = model / "model.tflite"
    with tflite.open("r+b") as stream:
        stream.truncate(tflite.stat().st_size // 2)
    return model


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_truncated_model_is_one_line_about_the_model(tmp_path, truncated_model, workers):
    if not CLIP.is_file():
        pytest.skip("../shared/data is absent")
    output = tmp_path / "out.jsonl"
    result = genred("classify", str(truncated_model), str(CLIP), str(CLIP.with_name(
        "blues.00001.flac")), "--workers", workers, "--output", str(output))
    assert_one_line_error(result, "model.tflite: cannot load TFLite model")
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "blues.0000" not in errors[0], result.stderr[-3000:]
    assert not output.exists() or output.read_text() == ""  # no per-file error recorded


def test_classify_of_rtsp_and_udp_that_never_send_fails_after_about_10_s(
        silent_server):  # noqa: F811
    """An RTSP server that accepts and never answers, a UDP port nobody sends to (F5)."""
    udp_port = free_port()
    started = time.monotonic()
    result = genred("classify", str(DEFAULT_MODEL), f"rtsp://127.0.0.1:{silent_server}/x",
                    f"udp://127.0.0.1:{udp_port}", "--workers", "1", timeout_seconds=100)
    elapsed_seconds = time.monotonic() - started
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    for url in (f"rtsp://127.0.0.1:{silent_server}/x", f"udp://127.0.0.1:{udp_port}"):
        assert re.search(f"error: {url}: cannot decode audio from {url}: "
                         r"(timed out after|no answer for) 12 s", result.stderr), \
            result.stderr[-3000:]
    assert elapsed_seconds < 2 * (NETWORK_STALL_SECONDS + 5), elapsed_seconds


def test_export_refuses_to_overwrite_a_tflite_model_without_force(tmp_path):
    """``genred export MODEL`` would replace the shipped model.tflite (issue 21 note)."""
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, model)
    before = (model / "model.tflite").read_bytes()
    contract = (model / "contract.json").read_text()
    started = time.monotonic()
    result = genred("export", str(model))
    assert_one_line_error(result, "model.tflite exists")
    assert "--force" in result.stderr
    assert time.monotonic() - started < 30  # refused before TensorFlow is imported
    assert (model / "model.tflite").read_bytes() == before
    assert (model / "contract.json").read_text() == contract
