"""dataset build: slicing rules, folder discovery, bad inputs, resume, real GTZAN clips."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.bfft import DEFAULT_PARAMS
from tests.training_synth import SYNTH_RATE_HZ, synth_clip, write_wav
from training.cli import main
from training.dataset import build_dataset, find_genre_files
from training.errors import InputError
from training.manifest import read_manifest
from training.slicing import plan_slices, source_stem

RATE_HZ = DEFAULT_PARAMS.sample_rate_hz
WINDOW = DEFAULT_PARAMS.window_samples
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


def seconds(value: float) -> int:
    """Samples at the contract rate."""
    return round(value * RATE_HZ)


@pytest.mark.parametrize(("length_seconds", "starts_seconds", "padded", "too_short"), [
    (30.0, [0.0], False, False),
    (29.5, [0.0], True, False),
    (28.9, [], False, True),
    (59.0, [0.0], False, False),
    (89.0, [0.0, WINDOW / RATE_HZ], False, False),
    (90.0, [30.0], False, False),
    (150.0, [30.0, 30.0 + WINDOW / RATE_HZ, 30.0 + 2 * WINDOW / RATE_HZ], False, False),
])
def test_plan_slices_rules(length_seconds, starts_seconds, padded, too_short):
    plan = plan_slices(seconds(length_seconds))
    assert [s / RATE_HZ for s in plan.starts] == pytest.approx(starts_seconds, abs=1e-6)
    assert (plan.padded, plan.too_short) == (padded, too_short)
    assert all(s + WINDOW <= max(seconds(length_seconds), WINDOW) for s in plan.starts)


def test_plan_slices_hop_and_short_override():
    assert len(plan_slices(seconds(60.0), hop_samples=seconds(10.0)).starts) == 4
    plan = plan_slices(seconds(5.0), allow_short=True)
    assert plan.starts == (0,) and plan.padded
    assert plan_slices(0, allow_short=True).too_short


def test_source_stem_strips_only_audio_extensions():
    assert source_stem("blues/blues.00001.wav") == "blues.00001"
    assert source_stem("blues.00001") == "blues.00001"
    assert source_stem("x/Song.Name.FLAC") == "Song.Name"


def _audio_tree(root: Path, genres: dict[str, int], seconds_each: float = 30.0) -> Path:
    """root/<genre>/<genre>.000NN.wav synthetic clips."""
    for genre, count in genres.items():
        for index in range(count):
            kind = ("drone", "hihat", "chords")[index % 3]
            write_wav(root / genre / f"{genre}.{index:05d}.wav",
                      synth_clip(kind, seconds_each, index))
    return root


def test_find_genre_files_layouts_and_errors(tmp_path, caplog):
    _audio_tree(tmp_path / "a" / "genres", {"rock": 1})
    (tmp_path / "a" / "genres" / "empty").mkdir()
    assert list(find_genre_files(tmp_path / "a")) == ["rock"]
    assert "holds no audio files" in caplog.text
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match="no genre folders"):
        find_genre_files(tmp_path / "b")
    with pytest.raises(InputError, match="inside the audio folder"):
        build_dataset(tmp_path / "a", tmp_path / "a" / "out")


def _corrupt_files(genre_dir: Path) -> None:
    """A text file named .wav, a truncated FLAC and a too-short clip."""
    (genre_dir / "fake.wav").write_text("this is not audio\n")
    flac = genre_dir / "cut.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:d=30", "-ar",
                    "22050", str(flac)], check=True)
    flac.write_bytes(flac.read_bytes()[:300])
    write_wav(genre_dir / "short.wav", synth_clip("drone", 10.0, 1))


def test_build_skips_bad_files_and_resumes(tmp_path, capsys):
    audio = _audio_tree(tmp_path / "audio", {"drone": 2, "hihat": 1})
    _corrupt_files(audio / "hihat")
    (audio / "empty").mkdir()
    before = sorted(p.relative_to(audio) for p in audio.rglob("*"))
    out = tmp_path / "data"
    assert main(["dataset", "build", str(audio), str(out), "--workers", "1"]) == 0
    summary = capsys.readouterr().out
    assert "files ok:        3" in summary and "undecodable" in summary
    assert "too short: 1" in summary
    rows = read_manifest(out)
    assert [r.source for r in rows] == ["drone/drone.00000.wav", "drone/drone.00001.wav",
                                        "hihat/hihat.00000.wav"]
    assert all((out / r.png).is_file() for r in rows)
    assert not list(out.rglob("*.partial")) and not list(out.rglob(".*.partial"))
    assert sorted(p.relative_to(audio) for p in audio.rglob("*")) == before
    (out / rows[0].png).unlink()
    summary = build_dataset(audio, out, workers=1)
    assert (summary.files_reused, summary.new_slices, summary.slices) == (2, 1, 3)


def test_build_reuses_pngs_after_a_crash_and_runs_a_pool(tmp_path):
    audio = _audio_tree(tmp_path / "audio", {"a": 2, "b": 2}, seconds_each=61.0)
    out = tmp_path / "data"
    first = build_dataset(audio, out, workers=2, limit_per_genre=1)
    assert (first.slices, first.new_slices) == (4, 4)
    (out / "manifest.csv").unlink()  # as if the run had died before writing the manifest
    (out / "a" / ".a.00001.s00.png.1.partial").write_bytes(b"half")
    second = build_dataset(audio, out, workers=2)
    assert (second.files_ok, second.new_slices, second.slices) == (4, 4, 8)
    with (out / "manifest.csv").open() as handle:
        records = list(csv.DictReader(handle))
    assert {r["slice_index"] for r in records} == {"0", "1"}
    starts = sorted({float(r["start_seconds"]) for r in records})
    assert starts == pytest.approx([0.0, WINDOW / RATE_HZ], abs=1e-3)


def test_no_genre_folders_is_a_clear_cli_error(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    assert main(["dataset", "build", str(tmp_path / "audio"), str(tmp_path / "out")]) == 2
    assert "no genre folders" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not (SHARED_DATA / "gtzan-mini").is_dir(), reason="no shared GTZAN clips")
def test_build_real_gtzan_clips(tmp_path):
    source = SHARED_DATA / "gtzan-mini"
    audio = tmp_path / "genres"
    for genre in ("blues", "metal"):
        (audio / genre).mkdir(parents=True)
        for clip in sorted((source / genre).glob("*.flac"))[:2]:
            (audio / genre / clip.name).symlink_to(clip)
    summary = build_dataset(audio, tmp_path / "data", workers=2)
    assert summary.files_ok == 4 and summary.slices == 4
    rows = read_manifest(tmp_path / "data")
    image = np.asarray(__import__("PIL.Image").Image.open(tmp_path / "data" / rows[0].png))
    assert image.shape == (224, 224, 3) and image.std() > 5
    assert SYNTH_RATE_HZ == 22050
