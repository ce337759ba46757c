"""tools/linear_screen: the L-BFGS softmax head learns, obeys masks; tag columns as log-odds."""

from __future__ import annotations

import numpy as np

from tools.linear_screen import fit_softmax, select


def test_softmax_head_separates_genres_and_never_learns_a_masked_output():
    """Two Gaussian genres: the head calls them right. With output 1 masked for every sample
    of genre 0, nothing teaches "genre 0 is not 1", so 1 wins everywhere: why training a
    collection only over its own genres can lower that collection's own figures."""
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(-1, 0.5, (100, 3)), rng.normal(1, 0.5, (100, 3))]
    targets = np.r_[np.zeros(100, int), np.ones(100, int)]
    plain = fit_softmax(x, targets, np.ones(200), np.ones((200, 3)), l2=1e-3)
    assert np.mean(plain(x).argmax(1) == targets) > 0.95
    masks = np.ones((200, 3))
    masks[:100, 1] = 0.0
    masked = fit_softmax(x, targets, np.ones(200), masks, l2=1e-3)
    assert np.all(masked(x).argmax(1) == 1)
    assert plain(x)[:, 2].max() < plain(x)[:, :2].max(1).min()  # the unused output stays low


def test_select_takes_columns_and_turns_tag_probabilities_into_log_odds():
    """'tags' are the last 50 columns, given as log(p / (1 - p)); 'all' is untouched."""
    features = np.full((2, 1756), 0.5, np.float32)
    features[:, 1706:] = 0.9
    assert select(features, "all") is features
    np.testing.assert_allclose(select(features, "tags"), np.log(9.0), rtol=1e-5)
    assert select(features, "penultimate+tags").shape == (2, 250)
