"""Splits: stratified by genre, grouped by song/artist, seeded; fixed lists; k-fold."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from training.errors import InputError
from training.manifest import SliceRow
from training.splits import (
    choose_split,
    fold_split,
    folds,
    group_keys,
    read_artists,
    read_split_dir,
    split_rows,
)

GENRES = ("blues", "jazz", "metal", "pop")


def make_rows(songs_per_genre: int = 20, seed: int = 0) -> list[SliceRow]:
    """Fake manifest: 1 to 3 slices per song."""
    rng = np.random.default_rng(seed)
    rows = []
    for genre in GENRES:
        for song in range(songs_per_genre):
            source = f"{genre}/{genre}.{song:05d}.wav"
            for index in range(int(rng.integers(1, 4))):
                rows.append(SliceRow(f"{genre}/{genre}.{song:05d}.s{index:02d}.png", genre,
                                     source, index, 30.0 * index))
    return rows


def assert_no_straddle(rows, parts, groups=None):
    groups = groups or [row.source for row in rows]
    owner = {}
    for name, indices in parts.items():
        for i in indices:
            assert owner.setdefault(groups[i], name) == name, f"{groups[i]} straddles"
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(rows)))


def test_split_is_grouped_stratified_and_proportional():
    rows = make_rows()
    parts = split_rows(rows, seed=3)
    assert_no_straddle(rows, parts)
    for name, target in (("train", 0.7), ("test", 0.2), ("valid", 0.1)):
        assert len(parts[name]) / len(rows) == pytest.approx(target, abs=0.05)
        assert {rows[i].genre for i in parts[name]} == set(GENRES)


def test_split_is_deterministic_per_seed():
    rows = make_rows()
    first, again, other = split_rows(rows, 1), split_rows(rows, 1), split_rows(rows, 2)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not all(np.array_equal(first[k], other[k]) for k in first)


def test_artist_grouping_keeps_an_artist_in_one_split(tmp_path):
    rows = make_rows()
    csv_path = tmp_path / "artists.csv"
    lines = ["stem,artist"] + [f"{g}.{s:05d},{g}-artist{s // 4}" for g in GENRES
                               for s in range(20)]
    csv_path.write_text("\n".join(lines) + "\n")
    artists = read_artists(csv_path)
    assert artists["blues.00005"] == "blues-artist1"
    parts = split_rows(rows, seed=0, artists=artists)
    assert_no_straddle(rows, parts, group_keys(rows, artists))


def test_folds_are_disjoint_stratified_and_grouped():
    rows = make_rows(10)
    parts = folds(rows, 5, seed=4)
    assert_no_straddle(rows, dict(enumerate(parts)))
    for part in parts:
        assert Counter(rows[i].genre for i in part).keys() == set(GENRES)
    assert all(np.array_equal(a, b) for a, b in zip(parts, folds(rows, 5, seed=4), strict=True))
    split = fold_split(rows, 5, 2, seed=4)
    assert np.array_equal(split["test"], parts[2]) and np.array_equal(split["valid"], parts[3])
    assert_no_straddle(rows, split)
    with pytest.raises(InputError):
        fold_split(rows, 5, 5)


def test_fixed_split_lists(tmp_path):
    rows = make_rows(3)
    (tmp_path / "train.txt").write_text("blues/blues.00000.wav\njazz.00000\nmetal.00000\n")
    (tmp_path / "test.txt").write_text("blues.00001\n# comment\n\npop.00002.au\n")
    parts = read_split_dir(tmp_path, rows)
    assert {rows[i].stem for i in parts["train"]} == {"blues.00000", "jazz.00000", "metal.00000"}
    assert {rows[i].stem for i in parts["test"]} == {"blues.00001", "pop.00002"}
    assert len(parts["valid"]) == 0
    chosen = choose_split(rows, {"split_dir": str(tmp_path)})
    assert chosen["test"].tolist() == parts["test"].tolist()


@pytest.mark.parametrize(("files", "message"), [
    ({"train.txt": "blues.00000\n", "test.txt": "", "validation.txt": ""}, "unknown split"),
    ({"train.txt": "blues.00099\n", "test.txt": ""}, "not in the dataset manifest"),
    ({"train.txt": "blues.00000\n", "test.txt": "blues.00000\n"}, "is in"),
    ({"train.txt": "blues.00000\n"}, "needs train.txt and test.txt"),
])
def test_bad_split_lists_are_clear_errors(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        read_split_dir(tmp_path, make_rows(3))


def test_choose_split_option_errors():
    rows = make_rows(5)
    with pytest.raises(InputError, match="--fold"):
        choose_split(rows, {"folds": 3})
    with pytest.raises(InputError, match="--folds"):
        choose_split(rows, {"fold": 1})
    assert len(choose_split(rows, {"folds": 3, "fold": 0, "seed": 0})) == 3


def test_id_blocks_group_gtzan_clips_into_artist_proxies():
    from training.splits import choose_split, id_block_artists

    rows = [SliceRow(png=f"{g}/{g}.{i:05d}.s00.png", genre=g, source=f"{g}/{g}.{i:05d}.flac",
                     slice_index=0, start_seconds=0.0)
            for g in ("blues", "rock") for i in range(40)]
    artists = id_block_artists(rows, 10)
    assert artists["blues.00017"] == "blues-ids10" and artists["rock.00039"] == "rock-ids30"
    for fold in range(4):
        split = choose_split(rows, {"artists": "id-blocks:10", "folds": 4, "fold": fold})
        test_blocks = {artists[rows[i].stem] for i in split["test"]}
        train_blocks = {artists[rows[i].stem] for i in split["train"]}
        assert test_blocks and not test_blocks & train_blocks
    with pytest.raises(InputError, match="id-blocks:N"):
        choose_split(rows, {"artists": "id-blocks:x"})
