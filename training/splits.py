"""Train/test/validation splits: stratified by genre, grouped by song (or artist), seeded.

Slices of one source file (or of one artist, with an artists CSV) never straddle two splits.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from training.errors import InputError
from training.manifest import SliceRow
from training.slicing import source_stem

_LOGGER = logging.getLogger(__name__)

SPLITS = ("train", "test", "valid")
DEFAULT_FRACTIONS = {"train": 0.7, "test": 0.2, "valid": 0.1}


def group_keys(rows: list[SliceRow], artists: dict[str, str] | None = None) -> list[str]:
    """Group of each row: its source file, or 'artist:<name>' when the artists map has it."""
    artists = artists or {}
    return [f"artist:{artists[row.stem]}" if row.stem in artists else f"source:{row.source}"
            for row in rows]


def read_artists(path: str | Path) -> dict[str, str]:
    """Source stem -> artist from a two-column CSV (stem,artist); a header row is allowed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"artists file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        records = [r for r in csv.reader(handle) if r and not r[0].startswith("#")]
    if records and [c.strip().lower() for c in records[0][:2]] == ["stem", "artist"]:
        records = records[1:]
    bad = [r for r in records if len(r) < 2 or not r[0].strip() or not r[1].strip()]
    if bad:
        raise InputError(f"{path}: rows must be 'source stem,artist', bad row {bad[0]!r}")
    return {r[0].strip(): r[1].strip() for r in records}


def _groups_by_genre(rows: list[SliceRow], groups: list[str]) -> dict[str, dict[str, int]]:
    """genre -> {group: n slices}; a group belongs to the genre most of its slices have."""
    genre_votes: dict[str, Counter] = {}
    for row, group in zip(rows, groups, strict=True):
        genre_votes.setdefault(group, Counter())[row.genre] += 1
    by_genre: dict[str, dict[str, int]] = {}
    for group, votes in sorted(genre_votes.items()):
        genre = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        by_genre.setdefault(genre, {})[group] = sum(votes.values())
    return by_genre


def _shuffled_by_size(sizes: dict[str, int], rng: np.random.Generator) -> list[str]:
    """Groups in a seeded random order, then stably largest first."""
    names = sorted(sizes)
    order = [names[i] for i in rng.permutation(len(names))]
    return sorted(order, key=lambda name: -sizes[name])


def split_rows(rows: list[SliceRow], seed: int = 0, fractions: dict[str, float] | None = None,
               artists: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Row indices per split, stratified by genre and grouped by song (or artist)."""
    fractions = fractions or DEFAULT_FRACTIONS
    groups = group_keys(rows, artists)
    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for _genre, sizes in sorted(_groups_by_genre(rows, groups).items()):
        total = sum(sizes.values())
        assigned = dict.fromkeys(fractions, 0)
        for group in _shuffled_by_size(sizes, rng):
            name = max(fractions, key=lambda s: fractions[s] * total - assigned[s])
            assignment[group] = name
            assigned[name] += sizes[group]
    return {name: np.array([i for i, g in enumerate(groups) if assignment[g] == name], int)
            for name in fractions}


def folds(rows: list[SliceRow], k: int, seed: int = 0,
          artists: dict[str, str] | None = None) -> list[np.ndarray]:
    """Row indices of ``k`` folds, stratified by genre and grouped by song (or artist)."""
    if k < 2:
        raise InputError(f"--folds must be >= 2, got {k}")
    groups = group_keys(rows, artists)
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    totals = np.zeros(k, dtype=int)
    for _genre, sizes in sorted(_groups_by_genre(rows, groups).items()):
        per_genre = np.zeros(k, dtype=int)
        for group in _shuffled_by_size(sizes, rng):
            fold = int(np.lexsort((np.arange(k), totals, per_genre))[0])
            fold_of[group] = fold
            per_genre[fold] += sizes[group]
            totals[fold] += sizes[group]
    return [np.array([i for i, g in enumerate(groups) if fold_of[g] == f], int)
            for f in range(k)]


def fold_split(rows: list[SliceRow], k: int, fold: int, seed: int = 0,
               artists: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Fold ``fold`` of ``k`` is the test split, the next fold validation, the rest training."""
    if not 0 <= fold < k:
        raise InputError(f"--fold must be in 0..{k - 1}, got {fold}")
    parts = folds(rows, k, seed, artists)
    valid = (fold + 1) % k
    train = [parts[i] for i in range(k) if i not in (fold, valid)]
    return {"train": np.sort(np.concatenate(train)), "test": parts[fold], "valid": parts[valid]}


def read_split_dir(split_dir: str | Path, rows: list[SliceRow]) -> dict[str, np.ndarray]:
    """Row indices per split from train.txt/test.txt/valid.txt lists of source stems."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise InputError(f"split folder not found: {split_dir}")
    lists = {path.stem: path for path in sorted(split_dir.glob("*.txt"))}
    unknown = sorted(set(lists) - set(SPLITS))
    if unknown:
        raise InputError(f"{split_dir}: unknown split file(s) {', '.join(unknown)}.txt; "
                         f"expected {', '.join(s + '.txt' for s in SPLITS)}")
    if "train" not in lists or "test" not in lists:
        raise InputError(f"{split_dir}: needs train.txt and test.txt (valid.txt optional)")
    stems = {row.stem for row in rows}
    split_of: dict[str, str] = {}
    for name, path in lists.items():
        for stem in _read_stems(path):
            if stem not in stems:
                raise InputError(f"{path}: stem {stem!r} is not in the dataset manifest")
            if split_of.setdefault(stem, name) != name:
                raise InputError(f"{split_dir}: stem {stem!r} is in {split_of[stem]} and {name}")
    unlisted = len(stems - set(split_of))
    if unlisted:
        _LOGGER.warning("%d source files are in no split list; they are left out", unlisted)
    return {name: np.array([i for i, r in enumerate(rows) if split_of.get(r.stem) == name], int)
            for name in SPLITS}


def _read_stems(path: Path) -> list[str]:
    """Source stems listed one per line (paths and audio extensions are stripped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [source_stem(line) for line in lines if line.strip() and not line.startswith("#")]


def describe(rows: list[SliceRow], split: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Slices and songs per split (for logs and the contract)."""
    return {name: {"slices": int(len(idx)), "songs": len({rows[i].source for i in idx})}
            for name, idx in split.items()}


ID_BLOCKS_PREFIX = "id-blocks:"
"""``--artists id-blocks:N``: group GTZAN-style ``<genre>.000NN`` clips in blocks of N ids."""


def id_block_artists(rows: list[SliceRow], ids_per_block: int) -> dict[str, str]:
    """Stem -> '<genre>-ids<first>' for stems ending in a clip number (an artist proxy)."""
    if ids_per_block < 1:
        raise InputError(f"--artists {ID_BLOCKS_PREFIX}N needs N >= 1, got {ids_per_block}")
    artists = {}
    for row in rows:
        _, _, number = row.stem.rpartition(".")
        if number.isdigit():
            first = int(number) // ids_per_block * ids_per_block
            artists[row.stem] = f"{row.genre}-ids{first}"
    return artists


def _artists_for(rows: list[SliceRow], setting: str | None) -> dict[str, str] | None:
    """The artists map of a split setting: a CSV path or id-blocks:N."""
    if not setting:
        return None
    if setting.startswith(ID_BLOCKS_PREFIX):
        size = setting.removeprefix(ID_BLOCKS_PREFIX)
        if not size.isdigit():
            raise InputError(f"--artists {setting!r}: use {ID_BLOCKS_PREFIX}N, e.g. id-blocks:11")
        return id_block_artists(rows, int(size))
    return read_artists(setting)


def choose_split(rows: list[SliceRow], settings: dict) -> dict[str, np.ndarray]:
    """Row indices per split from split settings (seed, split_dir, artists, folds, fold)."""
    artists = _artists_for(rows, settings.get("artists"))
    if settings.get("split_dir"):
        return read_split_dir(settings["split_dir"], rows)
    if settings.get("folds"):
        if settings.get("fold") is None:
            raise InputError("--folds needs --fold I (0-based index of the held-out fold)")
        return fold_split(rows, int(settings["folds"]), int(settings["fold"]),
                          int(settings.get("seed", 0)), artists)
    if settings.get("fold") is not None:
        raise InputError("--fold needs --folds K")
    return split_rows(rows, int(settings.get("seed", 0)), artists=artists)
