"""Compare patch-head routes on the leave-one-collection-out yardstick (issue 24's table).

Reads (or makes) the patch features that `genred train-head` caches for the same folders
and --work-dir, runs training.collection_yardstick for each route on identical held-out
parts, prints a markdown table (route, pooled macro recall, worst genre, pop, rock, reggae,
classical, the other collections' macro, the id collection's artist-held-out accuracy) and
writes every figure to --json. Routes are ranked by the pooled worst genre, then macro.

    D=../shared/data; python -m tools.compare_collections $D/gtzan-mini $D/gtzan-excerpts \\
        $D/emotify-share $D/taffc-share --nonmusic $D/nonmusic --nonmusic \\
        $D/cc-music/pibble.hq.ogg --work-dir runs/train-head --json FILE.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from training.collection_yardstick import (
    NON_MUSIC_COLLECTION,
    leave_one_collection_out,
    pooled,
)
from training.head import DEFAULT_ENCODERS, parse_encoders
from training.head_data import cache_key, collect_items, embed_items
from training.patch_head import HeadSettings

_LOGGER = logging.getLogger("compare_collections")
ROUTES = {  # name -> (train on the id collection only?, settings)
    "shipped recipe, GTZAN only (today's head)": (True, HeadSettings()),
    "shipped recipe, all collections": (False, HeadSettings()),
    "+ class balance per collection": (False, HeadSettings(balance_collections=True)),
    "+ label smoothing 0.1": (False, HeadSettings(label_smoothing=0.1)),
    "+ mixup across collections (alpha 0.4)": (False, HeadSettings(mixup_alpha=0.4)),
    "- within-genre collection directions (8)": (False, HeadSettings(collection_directions=8)),
    "linear head (softmax regression), GTZAN only": (True, HeadSettings(
        hidden_units=0, l2=1e-2, member_views=(None,))),
    "+ each sample's softmax over its own collection's genres": (False, HeadSettings(
        own_genres_only=True)),
}
SHOWN_GENRES = ("pop", "rock", "reggae", "classical")


def route_figures(result: dict, id_collection: str | None, genres: list[str]) -> dict:
    """The table's figures of one route's report."""
    overall = result["pooled"]
    others = pooled([r for r in result["parts"] if r["collection"] != id_collection], genres)
    return {"macro": overall["macro_recall"], "worst_genre": overall["worst_genre"],
            "worst": overall["worst_recall"],
            **{g: overall["recall"].get(g, float("nan")) for g in SHOWN_GENRES},
            "other_collections_macro": others["macro_recall"],
            "other_collections_worst": f"{others['worst_genre']} {others['worst_recall']:.2f}",
            "id_blocks_accuracy": result.get("id_blocks", {}).get("accuracy_mean",
                                                                  float("nan"))}


def shipped_row(model_dir: Path, data, outputs: list[str], genres: list[str],
                id_collection: str | None, view: int = 0) -> dict:
    """A shipped model's head on the collections it never heard (``view``, no training)."""
    from models.loader import load_artifact
    from models.patch_head import stage_models
    from training.collection_yardstick import HeldOutPart, report, score_part
    from training.patch_head import item_logits

    loaded = load_artifact(model_dir)
    if list(loaded.labels) + ["no_music"] != outputs:
        raise SystemExit(f"{model_dir}: outputs {loaded.labels} differ from {outputs}")
    head = stage_models(loaded.model)[1]
    of_item = np.array(data.collections)
    results = []
    for name in dict.fromkeys(c for c in data.collections
                              if c not in (id_collection, NON_MUSIC_COLLECTION)):
        part = HeldOutPart(name, name, np.flatnonzero(of_item == name))
        logits = item_logits(head, data, part.test, view)
        results.append(score_part(part, logits, data.target, set(range(len(outputs))),
                                  outputs, genres))
    return report(results, genres)


def table(rows: list[tuple[str, dict]]) -> str:
    """Markdown table, best route first (worst genre, then macro)."""
    ranked = sorted(rows, key=lambda r: (-r[1]["worst"], -r[1]["macro"]))
    lines = ["| route | held-out macro | worst genre | pop | rock | reggae | classical | "
             "other collections macro | GTZAN artist-held-out | s/route |",
             "|---" * 10 + "|"]
    for name, f in ranked:
        lines.append(f"| {name} | {f['macro']:.3f} | {f['worst_genre']} {f['worst']:.2f} | "
                     + " | ".join(f"{f[g]:.2f}" for g in SHOWN_GENRES)
                     + f" | {f['other_collections_macro']:.3f} | {f['id_blocks_accuracy']:.3f} "
                       f"| {f['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every chosen route; print the table; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("music_dirs", nargs="+")
    parser.add_argument("--nonmusic", action="append", default=[])
    parser.add_argument("--work-dir", default="runs/train-head")
    parser.add_argument("--encoders", default=DEFAULT_ENCODERS,
                        help="patch encoders, e.g. MSD_vgg:pool5+pool4_mean+pool4_max+tags")
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--quiet-views", type=int, default=0)
    parser.add_argument("--narrow-views", type=int, default=0)
    parser.add_argument("--shipped-view", type=int, default=0,
                        help="the view --shipped is scored on (e.g. the first narrow-band)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--routes", default="",
                        help="comma-separated route numbers (1-based; 'none': only --shipped)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--whole-only", action="store_true",
                        help="screen: hold out only the collections without clip ids")
    parser.add_argument("--shipped", type=Path,
                        help="also score this artifact's head on the other collections as is")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    encoders = parse_encoders(args.encoders)
    collections = collect_items(args.music_dirs, args.nonmusic, Path(args.work_dir), True, 0)
    outputs = collections.genres + (["no_music"] if collections.has_no_music else [])
    key = cache_key(encoders, 0, 30.0)
    data, _ = embed_items(collections, outputs, encoders, args.views,
                          Path(args.work_dir) / key, 0, 30.0, args.quiet_views,
                          args.narrow_views)
    id_collection = next((c for c, i in zip(data.collections, data.clip_ids, strict=True)
                          if i is not None), None)
    chosen = ([int(n) - 1 for n in args.routes.split(",") if n != "none"] if args.routes
              else range(len(ROUTES)))
    rows, results = [], {}
    if args.shipped:
        result = shipped_row(args.shipped, data, outputs, collections.genres, id_collection,
                             args.shipped_view)
        figures = {**route_figures(result, id_collection, collections.genres), "seconds": 0.0}
        rows.append((f"{args.shipped.name} as shipped (other collections only, view "
                     f"{args.shipped_view})", figures))
        results[rows[-1][0]] = {"figures": figures, "report": result}
    for index in chosen:
        name, (id_only, settings) = list(ROUTES.items())[index]
        trainable = np.array([c in (id_collection, NON_MUSIC_COLLECTION) or not id_only
                              for c in data.collections])
        started = time.monotonic()
        result = leave_one_collection_out(data, outputs, collections.genres, args.folds,
                                          settings, trainable, args.whole_only)
        figures = {**route_figures(result, id_collection, collections.genres),
                   "seconds": time.monotonic() - started}
        rows.append((name, figures))
        results[name] = {"settings": repr(settings), "figures": figures, "report": result}
        _LOGGER.info("%s: %s", name, json.dumps(figures))
        write_json(args, results)  # after every route, so a long run keeps what it has
    write_json(args, results)
    print(table(rows), flush=True)  # noqa: T201 - the tool's output
    return 0


def write_json(args: argparse.Namespace, results: dict) -> None:
    """Every route's figures and reports to --json (when given)."""
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"views": args.views, "quiet_views": args.quiet_views,
                                         "folds": args.folds, "whole_only": args.whole_only,
                                         "routes": results},
                                        indent=1, default=float))


if __name__ == "__main__":
    raise SystemExit(main())
