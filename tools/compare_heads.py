"""Compare default-model routes on the artist-held-out yardstick (models/README.md table).

Reads the patch features that `genred train-head` cached (same folders, same --work-dir,
default encoders) and cross-validates each route on identical folds: feature sets
(MSD musicnn penultimate vs all four outputs), linear vs MLP head, clean-only vs
listening-channel augmented training. Prints a markdown table.

    python -m tools.compare_heads ../shared/data/gtzan-mini ../shared/data/gtzan-excerpts \\
        --nonmusic ../shared/data/nonmusic --work-dir runs/train-head
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from training.head import DEFAULT_ENCODERS, parse_encoders
from training.head_data import cache_key, collect_items, embed_items
from training.patch_head import HeadSettings, cross_validate

ROUTES = (  # name, feature columns, hidden units, training views of each member head
    ("MSD penultimate, linear, clean", 200, 0, ((0,),)),
    ("MSD penultimate, linear, + channels", 200, 0, (None,)),
    ("MSD all outputs, linear, + channels", None, 0, (None,)),
    ("MSD all outputs, MLP-256, clean", None, 256, ((0,),)),
    ("MSD all outputs, MLP-256, + channels", None, 256, (None,)),
    ("MSD all outputs, MLP-256 clean + MLP-256 channels (shipped)", None, 256, ((0,), None)),
)


def route_row(name: str, summary: dict, channel: dict) -> str:
    """One markdown row: accuracy, folds, per-genre recall, channel accuracy."""
    recall = " | ".join(f"{v:.2f}" for v in summary["recall"].values())
    folds = ", ".join(f"{a:.2f}" for a in summary["fold_accuracy"])
    return (f"| {name} | **{summary['accuracy_mean']:.3f} ± {summary['accuracy_std']:.3f}** | "
            f"{folds} | {recall} | {channel['accuracy_mean']:.3f} |")


def main(argv: list[str] | None = None) -> int:
    """Print the route table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("music_dirs", nargs="+")
    parser.add_argument("--nonmusic", action="append", default=[])
    parser.add_argument("--work-dir", default="runs/train-head")
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    encoders = parse_encoders(DEFAULT_ENCODERS)
    collections = collect_items(args.music_dirs, args.nonmusic, Path(args.work_dir), True, 0)
    outputs = collections.genres + (["no_music"] if collections.has_no_music else [])
    key = cache_key(encoders, 0, 30.0)
    data, _ = embed_items(collections, outputs, encoders, args.views,
                          Path(args.work_dir) / key, 0, 30.0)
    genres = " | ".join(g[:5] for g in collections.genres)
    print(f"| route | accuracy | per fold | {genres} | + channel |")  # noqa: T201
    print("|---" * (5 + len(collections.genres)) + "|")  # noqa: T201
    for name, columns, hidden, views in ROUTES:
        subset = dataclasses.replace(data, features=data.features[:, :columns])
        settings = HeadSettings(hidden_units=hidden, epochs=30, member_views=views)
        cv = cross_validate(subset, outputs, collections.genres, args.folds, settings)
        print(route_row(name, cv["summary"], cv["channel_summary"]), flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
