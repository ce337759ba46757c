"""``genred classify --output`` on damaged results files (issue 21 F6, F9), with the shipped
model (TFLite: no TensorFlow, a few seconds per run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, make_tone_file

pytestmark = pytest.mark.timeout(300)
MODEL = REPO_ROOT / "models" / "genred-default"


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("tones")
    return [make_tone_file(folder / f"tone{i}.flac", 300 + 500 * i, 35.0, 22050)
            for i in range(2)]


def classify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", "classify", str(MODEL), *args,
                           "--workers", "1"], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=240,
                          stdin=subprocess.DEVNULL)


def test_a_partial_last_line_does_not_swallow_the_next_result(tones, tmp_path):
    """F6: an interrupted write left half a line; the next result must still parse."""
    output = tmp_path / "results.jsonl"
    first = classify(str(tones[0]), "--output", str(output))
    assert first.returncode == 0, first.stderr[-3000:]
    output.write_bytes(output.read_bytes()[:-40])  # the interrupted write
    second = classify(*map(str, tones), "--output", str(output))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "line 1 is not JSON (an interrupted write?); ignored" in second.stderr
    lines = output.read_text().splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["file"] for line in lines[1:]] == list(map(str, tones))
    third = classify(*map(str, tones), "--output", str(output))  # nothing left to do
    assert third.returncode == 0 and "2 of 2 files already in" in third.stderr
    assert len(output.read_text().splitlines()) == 3


def test_non_utf8_bytes_in_the_results_file_are_a_warning(tones, tmp_path):
    """F9: was a UnicodeDecodeError traceback."""
    output = tmp_path / "results.jsonl"
    output.write_bytes(b'\x00\xff garbage\n{"file": ["not", "a", "name"]}\n')
    result = classify(str(tones[0]), "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "line 1 is not JSON (an interrupted write?); ignored" in result.stderr
    last = output.read_bytes().splitlines()[-1]
    assert json.loads(last)["file"] == str(tones[0])
