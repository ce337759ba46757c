"""Whole-song classification speed: ``genred classify`` on a 4-minute song vs real time.

The song is 8 gtzan-mini clips of different genres joined with ffmpeg (bench/.cache). Two
figures: the ``genred classify`` subprocess end to end (interpreter start, TensorFlow import,
model load, decoding, front-end, inference), and ``classify_song`` in this process with the
model already loaded (decoding, front-end, inference).

Run: .venv/bin/python -m bench.classify [--repeats 3] [--model DIR]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import (
    CACHE_DIR,
    PYTHON,
    REPO_ROOT,
    SHARED_DATA,
    setup_logging,
    summarize,
    vgg16_artifact,
    write_result,
)

_LOGGER = logging.getLogger("bench.classify")
SONG_CLIPS = 8


def make_song() -> Path:
    """bench/.cache/song-4min.flac: the first clip of 8 genres, concatenated (about 240 s)."""
    song = CACHE_DIR / "song-4min.flac"
    if song.is_file():
        return song
    genres = sorted(p for p in (SHARED_DATA / "gtzan-mini").iterdir() if p.is_dir())
    clips = [sorted(g.glob("*.flac"))[0] for g in genres[:SONG_CLIPS]]
    inputs = [arg for clip in clips for arg in ("-i", str(clip))]
    graph = "".join(f"[{i}:a]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=0:a=1"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs,
                    "-filter_complex", graph, "-ac", "1", str(song)], check=True, timeout=120)
    return song


def run(model: Path, repeats: int) -> dict[str, Any]:
    """Both timings of the song."""
    from models.audio import load_audio
    from models.loader import load_artifact
    from training.classify import classify_song

    song = make_song()
    seconds = load_audio(song).size / 44100
    end_to_end = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([PYTHON, "-m", "daemon", "classify", str(model), str(song), "--json"],
                       cwd=REPO_ROOT, check=True, capture_output=True, timeout=600)
        end_to_end.append(time.perf_counter() - started)
    started = time.perf_counter()
    loaded = load_artifact(model)
    load_seconds = time.perf_counter() - started
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = classify_song(loaded, str(song))
        warm.append(time.perf_counter() - started)
    e2e, excl = summarize(end_to_end, 3), summarize(warm, 3)
    out = {"model": str(model), "song_seconds": round(seconds, 1), "n_slices": result["n_slices"],
           "end_to_end_seconds": e2e, "excluding_load_seconds": excl,
           "model_load_seconds": round(load_seconds, 2),
           "end_to_end_x_realtime": round(seconds / e2e["median"], 1),
           "excluding_load_x_realtime": round(seconds / excl["median"], 1)}
    _LOGGER.info("x real time: %.1f end to end, %.1f without model load",
                 out["end_to_end_x_realtime"], out["excluding_load_x_realtime"])
    return out


def main() -> None:
    """Measure and write bench/results/classify.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="artifact (default: the random-weights VGG16)")
    args = parser.parse_args()
    setup_logging()
    write_result("classify", run(Path(args.model) if args.model else vgg16_artifact(),
                                 args.repeats))


if __name__ == "__main__":
    main()
