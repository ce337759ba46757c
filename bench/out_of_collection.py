"""The default model on collections it never trained on, one verdict per clip, per genre.

Runs ``genred classify FOLDER --json --workers 1`` (the user's command, runtime auto) on
Emotify and TAFFC and writes per-genre recall and verdict counts to
bench/results/out_of_collection_default.json (the README's "How accurate" figures).

Run: .venv/bin/python -m bench.out_of_collection [--model models/genred-default]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
from collections import Counter
from pathlib import Path

from bench.common import PYTHON, REPO_ROOT, SHARED_DATA, machine, setup_logging, write_result

_LOGGER = logging.getLogger("bench.out_of_collection")
COLLECTIONS = ("emotify-share", "taffc-share")


def verdicts(model: Path, folder: Path) -> list[tuple[str, str]]:
    """(true genre = the file's folder, verdict) of every file ``genred classify`` reads."""
    done = subprocess.run([str(PYTHON), "-m", "daemon.cli", "classify", str(folder), "--json",
                           "--workers", "1", "--model", str(model)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True, timeout=3600)
    return [(Path(r["file"]).parent.name,
             r["genre"] if r["outcome"] == "music" else r["outcome"])
            for r in json.loads(done.stdout)]


def summary(pairs: list[tuple[str, str]]) -> dict:
    """Accuracy, and per genre: recall and what the clips were called."""
    per_genre = {}
    for genre in sorted({truth for truth, _ in pairs}):
        said = Counter(v for t, v in pairs if t == genre)
        clips = sum(said.values())
        per_genre[genre] = {"recall": round(said[genre] / clips, 3), "correct": said[genre],
                            "clips": clips, "verdicts": dict(said.most_common())}
    correct = sum(t == v for t, v in pairs)
    return {"accuracy": round(correct / len(pairs), 3), "correct": correct,
            "clips": len(pairs), "per_genre": per_genre}


def main(argv: list[str] | None = None) -> int:
    """Both collections; the JSON the README cites."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "genred-default")
    parser.add_argument("--name", default="out_of_collection_default")
    args = parser.parse_args(argv)
    setup_logging()
    collections = {}
    for name in COLLECTIONS:
        collections[name] = summary(verdicts(args.model, SHARED_DATA / name))
        _LOGGER.info("%s: %s", name, json.dumps(collections[name]))
    correct = sum(c["correct"] for c in collections.values())
    clips = sum(c["clips"] for c in collections.values())
    write_result(args.name, {
        "what": f"{args.model.name} (runtime auto) on two collections it was never trained on: "
                "one verdict per 30-s clip (genred classify --workers 1)",
        "machine": machine(), "collections": collections,
        "accuracy_overall": round(correct / clips, 3), "clips_overall": clips})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
