"""Out-of-collection check: a model on ../shared/data's CC-licensed music and non-music.

Classifies every window of each file with ``genred classify``'s code (30-s slices, silence
and no-music outcomes) and prints a markdown table: expected style, verdict, slice votes.
Styles outside the model's ten genres (drum and bass, ragtime, a trumpet loop, a waltz) are
listed as 'not one of the ten': their verdicts show tendencies, not errors.

    python -m tools.out_of_collection models/genred-default [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from models.loader import load_artifact
from training.classify import classify_song

_LOGGER = logging.getLogger("out_of_collection")
EXPECTED = {
    "Kevin_MacLeod_-_Vibe_Ace": "jazz",
    "Hungarian_Dance_number_5": "classical",
    "Kevin_MacLeod_-_P_I_Tchaikovsky": "classical",
    "Karissa_Hobbs_-_Lets_Go_Fishin": "country",
    "sweet-waltz": "(waltz: not one of the ten)",
    "ragtime": "(ragtime: not one of the ten)",
    "Drum-bass": "(drum and bass: not one of the ten)",
    "solo-trumpet": "(trumpet loop: not one of the ten)",
    "pibble": "no music",
}


def expected_for(path: Path, nonmusic: bool) -> str:
    """The expected outcome of a shared file (by name)."""
    if nonmusic:
        return "no music"
    return next((v for k, v in EXPECTED.items() if k in path.name), "?")


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    loaded = load_artifact(args.model_dir)
    rows = ["| file | expected | verdict | slices |", "|---|---|---|---|"]
    files = [(p, False) for p in sorted((args.shared / "cc-music").glob("*.ogg"))]
    files += [(p, True) for p in sorted((args.shared / "nonmusic").glob("*.ogg"))]
    for path, nonmusic in files:
        result = classify_song(loaded, str(path))
        outcomes = ", ".join(s["outcome"] for s in result["slices"])
        rows.append(f"| {path.name[:40]} | {expected_for(path, nonmusic)} | "
                    f"{result['genre'] or result['outcome']} | {outcomes} |")
    print("\n".join(rows))  # noqa: T201 - the tool's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
