"""Quiet music: the verdict of a model on real clips turned down, per gain, as classify gives it.

Each clip's first 30-s window (short files looped), scaled by each gain, goes through the
front-end and the model (Keras); the verdict is ``silent`` when the window is quieter than
the silence gate, else ``no music`` at p >= 0.5, else the top genre. Reported per gain and
collection: windows right, music called no music, music reported silent, non-music called
no music. Use collections the model never trained on (Emotify and TAFFC for genred-default)
so the figure is not memory.

Run: .venv/bin/python -m bench.quiet_music [--model models/genred-default]
     [--gains 0,-10,-20,-30,-40] [--silence-dbfs -60]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from bench.common import REPO_ROOT, SHARED_DATA, machine, setup_logging, write_result

_LOGGER = logging.getLogger("bench.quiet_music")
DATA = SHARED_DATA
SETS = {"emotify-share": "*/*.mp3", "taffc-share": "*/*.mp3", "nonmusic": "*.ogg"}


def windows(folder: Path, pattern: str) -> list[tuple[str, np.ndarray]]:
    """(label, first 30-s window at 44.1 kHz) of every file; non-music labelled no_music."""
    from models.audio import load_audio
    from models.musicnn.spec import PARAMS
    from training.slicing import loop_to_window

    size = int(PARAMS["window_samples"])
    return [(path.parent.name if pattern.startswith("*/") else "no_music",
             loop_to_window(load_audio(path, int(PARAMS["input_rate_hz"])), size)[:size])
            for path in sorted(folder.glob(pattern))]


def verdicts(model, clips: list[tuple[str, np.ndarray]], gain_db: float,
             silence_dbfs: float) -> list[str]:
    """The verdict of every clip at ``gain_db``."""
    from models.musicnn.features import window_patches
    from models.musicnn.spec import PARAMS
    from models.outcome import NO_MUSIC_THRESHOLD, rms_dbfs

    labels, out = list(model.labels), []
    for _, audio in clips:
        scaled = audio * np.float32(10 ** (gain_db / 20))
        if rms_dbfs(scaled) < silence_dbfs:
            out.append("silent")
            continue
        outputs = model.predict_outputs(window_patches(scaled, PARAMS)[np.newaxis])[0]
        out.append("no_music" if outputs[-1] >= NO_MUSIC_THRESHOLD
                   else labels[int(np.argmax(outputs[: len(labels)]))])
    return out


def main(argv: list[str] | None = None) -> int:
    """Every gain over every set; writes bench/results/quiet_music.json."""
    from models.loader import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "genred-default")
    parser.add_argument("--gains", default="0,-10,-20,-30,-40")
    parser.add_argument("--silence-dbfs", type=float, default=-60.0)
    parser.add_argument("--name", default="quiet_music")
    args = parser.parse_args(argv)
    setup_logging()
    model = load_model(args.model, "keras")
    sets = {name: windows(DATA / name, pattern) for name, pattern in SETS.items()}
    rows = []
    for gain_db in [float(g) for g in args.gains.split(",")]:
        for name, clips in sets.items():
            said = verdicts(model, clips, gain_db, args.silence_dbfs)
            truth = [label for label, _ in clips]
            music = [t != "no_music" for t in truth]
            row = {"gain_db": gain_db, "set": name, "n": len(clips),
                   "right": int(sum(s == t for s, t in zip(said, truth, strict=True))),
                   "music_called_no_music": int(sum(m and s == "no_music"
                                                    for m, s in zip(music, said, strict=True))),
                   "silent": int(sum(s == "silent" for s in said))}
            rows.append(row)
            _LOGGER.info("%s", row)
    write_result(args.name, {"machine": machine(), "model": str(args.model),
                             "silence_dbfs": args.silence_dbfs, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
