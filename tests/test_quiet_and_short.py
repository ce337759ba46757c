"""The shipped default on real quiet music and short files: music stays music.

gtzan-mini classical clips turned down by 20 dB (-48 dBFS), 30 dB (-58 dBFS) or 15 dB and
faded in keep their genre (the front-end lifts quiet patches); 40 dB down (-68 dBFS) is below
the -60 dBFS silence gate: "silent", never "no music". Speech 30 dB down is still no music:
the lift does not make quiet sound music. A 5-s trumpet loop (cc-music) gets a genre; 6 s of
speech is still no music.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.tf
MODEL_DIR = REPO_ROOT / "models" / "genred-default"


@pytest.fixture(scope="module")
def default_model():
    from models.loader import load_artifact

    return load_artifact(MODEL_DIR)


def _filtered(source: Path, target: Path, audio_filter: str) -> str:
    """``source`` through an ffmpeg audio filter, as 44.1 kHz mono FLAC."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-af", audio_filter,
                    "-ar", "44100", "-ac", "1", str(target)], check=True, timeout=60)
    return str(target)


@pytest.mark.parametrize(("clip", "audio_filter", "genre"), [
    ("classical/classical.00000.flac", "volume=-20dB", "classical"),
    ("classical/classical.00003.flac", "volume=-15dB,afade=t=in:d=10", "classical"),
    ("classical/classical.00000.flac", "volume=-30dB", "classical"),
    ("classical/classical.00003.flac", "volume=-30dB", "classical"),
    ("classical/classical.00000.flac", "volume=-40dB", "silent"),
])
def test_quiet_music_keeps_its_genre(default_model, shared_data, tmp_path, clip,
                                     audio_filter, genre):
    from training.classify import classify_song

    path = _filtered(shared_data / "gtzan-mini" / clip, tmp_path / "quiet.flac", audio_filter)
    result = classify_song(default_model, path, progress=False)
    assert [s["outcome"] for s in result["slices"]] == [genre], result["slices"]


def test_short_trumpet_loop_is_music(default_model, shared_data):
    from training.classify import classify_song

    trumpet = shared_data / "cc-music" / "sorohanro_-_solo-trumpet-06.hq.ogg"
    result = classify_song(default_model, str(trumpet), progress=False)
    assert result["seconds"] < 6 and result["outcome"] == "music" and result["genre"]
    assert result["slices"][0]["no_music_probability"] < 0.5


def test_quiet_speech_is_still_no_music(default_model, shared_data, tmp_path):
    from training.classify import classify_song

    speech = sorted((shared_data / "nonmusic").glob("*.ogg"))[0]
    quiet = _filtered(speech, tmp_path / "speech.flac", "volume=-30dB")
    result = classify_song(default_model, quiet, progress=False)
    assert {s["outcome"] for s in result["slices"]} == {"no music"}, result["slices"]


def test_short_speech_is_still_no_music(default_model, shared_data, tmp_path):
    from training.classify import classify_song

    speech = sorted((shared_data / "nonmusic").glob("*.ogg"))[0]
    short = _filtered(speech, tmp_path / "speech.flac", "atrim=0:6")
    result = classify_song(default_model, short, progress=False)
    assert result["outcome"] == "no music"
