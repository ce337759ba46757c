"""The shipped default on real quiet music and short files: music stays music.

A gtzan-mini classical clip turned down by 30 dB and faded in, a soft jazz clip at -20 dB
and a 5-s trumpet loop (cc-music) must get a genre, never "no music" or "silent"; speech
must still be no music.
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
    ("classical/classical.00000.flac", "volume=-30dB", "classical"),
    ("classical/classical.00003.flac", "volume=-20dB,afade=t=in:d=10", "classical"),
    ("jazz/jazz.00001.flac", "volume=-20dB", "jazz"),
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


def test_short_speech_is_still_no_music(default_model, shared_data, tmp_path):
    from training.classify import classify_song

    speech = sorted((shared_data / "nonmusic").glob("*.ogg"))[0]
    short = _filtered(speech, tmp_path / "speech.flac", "atrim=0:6")
    result = classify_song(default_model, short, progress=False)
    assert result["outcome"] == "no music"
