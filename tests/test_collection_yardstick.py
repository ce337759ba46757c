"""Leave-one-collection-out parts, scoring only trained genres, pooling; collection options."""

from __future__ import annotations

import numpy as np
import pytest

from training.collection_yardstick import (
    collection_names,
    held_out_parts,
    pooled,
    report,
    score_part,
)
from training.head_recipe import balanced_weights, collection_label_masks, mixup_across
from training.yardstick import artist_folds


def test_folders_with_clip_ids_are_one_collection():
    names = collection_names(["gtzan-mini", "gtzan-excerpts", "emotify"], [True, True, False])
    assert names == ["gtzan-mini+gtzan-excerpts"] * 2 + ["emotify"]


def test_id_collection_is_held_out_by_blocks_and_others_whole():
    collections = ["g"] * 6 + ["e"] * 3 + ["no_music"] * 2
    ids = [0, 1, 2, 3, 4, 5] + [None] * 5
    parts = held_out_parts(collections, ids, 3)
    assert [p.name for p in parts] == ["g ids 0-1", "g ids 2-3", "g ids 4-5", "e"]
    assert [p.test.tolist() for p in parts] == [[0, 1], [2, 3], [4, 5], [6, 7, 8]]
    assert held_out_parts(["e"] * 3, [None] * 3, 3) == []  # one collection: nothing to hold


def test_only_genres_on_the_training_side_are_scored_and_pooled():
    genres, outputs = ["pop", "rock", "jazz"], ["pop", "rock", "jazz", "no_music"]
    part = held_out_parts(["a"] * 2 + ["b"] * 4, [None] * 6, 2)[1]
    targets = np.array([0, 1, 0, 1, 2, 2])
    logits = np.eye(4)[[0, 0, 1, 1]]  # pop right, rock wrong, jazz items unscorable
    result = score_part(part, logits, targets, {0, 1, 3}, outputs, genres)
    assert result["n_items"] == 2 and result["unscored_genres"] == ["jazz"]
    assert result["recall"]["pop"] == 1.0 and result["recall"]["rock"] == 0.0
    summary = pooled([result, result], genres)
    assert summary["macro_recall"] == pytest.approx(0.5)
    assert summary["worst_genre"] == "rock" and "jazz" not in summary["recall"]
    assert report([result], genres)["collections"]["b"]["n_items"] == 2


def test_artist_folds_keep_an_artist_on_one_side():
    labels = ["pop"] * 6
    plan = artist_folds(labels, [None] * 6, 2, ["x", "y", "x", "z", "y", "x"])
    assert plan.fold_of_item.tolist() == [0, 1, 0, 0, 1, 0]


def test_collection_balance_gives_each_collection_an_equal_share_of_a_genre():
    targets = np.array([0, 0, 0, 0, 1, 1])
    groups = np.array([0, 0, 0, 1, 0, -1])
    weights = balanced_weights(targets, 2, groups)
    assert weights[:3].sum() == pytest.approx(weights[3])
    assert weights[:4].sum() == pytest.approx(weights[4:].sum())
    plain = balanced_weights(targets, 2)
    assert plain[:4].sum() == pytest.approx(plain[4:].sum())


def test_mixup_mixes_music_across_collections_and_leaves_non_music():
    rng = np.random.default_rng(0)
    features = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    onehot = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 0, 1, 2, 2]]
    groups = np.array([0, 0, 0, 1, 1, 1, -1, -1])
    mixed, soft, _ = mixup_across(features, onehot, np.ones(8, np.float32), groups, 0.4, rng)
    assert np.array_equal(mixed[6:], features[6:]) and np.array_equal(soft[6:], onehot[6:])
    assert np.allclose(soft.sum(1), 1.0)
    assert np.all(soft[:6].max(1) >= 0.5)


def test_collection_directions_remove_a_production_offset_but_keep_the_genre():
    from training.head_recipe import collection_directions, remove_directions

    rng = np.random.default_rng(0)
    targets = np.repeat([0, 1, 0, 1], 50)
    groups = np.repeat([0, 0, 1, 1], 50)
    genre, production = np.eye(20)[0], np.eye(20)[1]
    features = (rng.normal(size=(200, 20)) * 0.1 + np.outer(targets, genre) * 3
                + np.outer(groups, production) * 3).astype(np.float32)
    directions = collection_directions(features, targets, groups, 4)
    assert directions.shape[1] >= 1 and abs(directions[1, 0]) > 0.95
    cleaned = remove_directions(features, directions)
    assert abs(cleaned[groups == 1, 1].mean() - cleaned[groups == 0, 1].mean()) < 0.2
    assert cleaned[targets == 1, 0].mean() - cleaned[targets == 0, 0].mean() > 2.5


@pytest.mark.tf
def test_head_with_directions_removed_ignores_them_at_serving():
    from training.head_recipe import collection_directions
    from training.patch_head import HeadSettings, fit_head

    rng = np.random.default_rng(1)
    targets = np.repeat([0, 1, 0, 1], 60)
    groups = np.repeat([0, 0, 1, 1], 60)
    features = (rng.normal(size=(240, 12)) + np.outer(targets, np.eye(12)[0]) * 8
                + np.outer(groups, np.eye(12)[1]) * 3 + 10).astype(np.float32)
    settings = HeadSettings(hidden_units=16, epochs=40, member_views=((0,),),
                            collection_directions=2)
    head = fit_head(features, targets, np.zeros(240, int), 2, settings, groups)
    mean, scale = features.mean(0), np.sqrt(features.var(0) + 1e-6)
    direction = collection_directions((features - mean) / scale, targets, groups, 2)[:, 0]
    moved = features + 5.0 * scale * direction
    np.testing.assert_allclose(head.predict(moved, verbose=0), head.predict(features, verbose=0),
                               atol=1e-3)
    assert np.mean(head.predict(features, verbose=0).argmax(1) == targets) > 0.8


def test_label_masks_train_each_sample_over_its_own_collections_genres_and_no_music():
    """Genres 0-2 + no music (3): a collection with every genre, one with 0-1, one with 2."""
    targets = np.array([0, 1, 2, 0, 1, 2, 3])
    groups = np.array([0, 0, 0, 1, 1, 2, -1])
    masks = collection_label_masks(targets, groups, 4)
    np.testing.assert_array_equal(masks, [[1, 1, 1, 1]] * 3 + [[1, 1, 0, 1]] * 2
                                  + [[0, 0, 1, 1], [1, 1, 1, 1]])


@pytest.mark.parametrize("own_genres_only", [False, True])
def test_own_genres_only_keeps_a_collections_production_from_becoming_a_genre(own_genres_only):
    """Feature 0 is the genre (pop +1, country -1), feature 1 the production. A mixed
    collection (production 0) holds both genres; a pop-only collection has production +1 and
    a country-only one production -1, so production predicts genre in training. Plain
    training learns it and calls pop with the country collection's production country; over
    each collection's own genres only, production teaches nothing and the genre wins."""
    from training.patch_head import HeadSettings, fit_head

    rng = np.random.default_rng(0)
    genre = np.r_[np.ones(40), -np.ones(40), np.ones(200), -np.ones(200)]
    production = np.r_[np.zeros(80), np.ones(200), -np.ones(200)]
    features = np.stack([genre + rng.normal(0, 0.8, genre.size),
                         production + rng.normal(0, 0.1, genre.size)], 1).astype(np.float32)
    targets = (genre < 0).astype(int)  # 0 pop, 1 country
    groups = np.r_[np.zeros(80), np.ones(200), 2 * np.ones(200)].astype(int)
    settings = HeadSettings(hidden_units=0, epochs=60, learning_rate=0.03, member_views=(None,),
                            own_genres_only=own_genres_only)
    head = fit_head(features, targets, np.zeros(genre.size, int), 2, settings, groups)
    pop_from_the_country_collection = np.array([[1.0, -1.0]], np.float32)
    called = int(np.asarray(head.predict(pop_from_the_country_collection, verbose=0)).argmax())
    assert called == (0 if own_genres_only else 1)


def test_artist_held_out_figures_are_given_per_collection_too():
    """Pooled accuracy hides a collection whose genres are mostly wrong: 6 items of A all
    right, 4 of B (genres 0 and 1) half wrong; non-music items never form a collection."""
    from training.patch_head import PatchData, by_collection, format_by_collection

    targets = np.array([0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 2])
    data = PatchData(features=np.zeros((11, 1), np.float32), item=np.arange(11),
                     view=np.zeros(11, int), target=targets, clip_ids=[None] * 11,
                     labels=["x"] * 11, collections=["A"] * 6 + ["B"] * 4 + ["no_music"])
    figures = by_collection(data, np.eye(3)[predicted], ["pop", "rock", "no_music"],
                            ["pop", "rock"])
    assert list(figures) == ["A", "B"]
    assert figures["A"]["macro_recall"] == 1.0 and figures["A"]["n_items"] == 6
    assert figures["B"]["recall"] == {"pop": 0.5, "rock": 0.5}
    assert figures["B"]["worst_genre"] == "pop" and figures["B"]["accuracy"] == 0.5
    assert format_by_collection(figures)[1] == (
        "artist-held-out, B items: macro 0.500, worst pop 0.50 (pop 0.50, rock 0.50)")
