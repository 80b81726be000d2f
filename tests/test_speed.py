"""The speed corner (tinynmt/fast/cpu.py): each trick gives what its plain version gives."""
import numpy as np
import pytest

from tinynmt.decoding.search import _top_k_plain
from tinynmt.fast.cpu import keep_mask_from_bits, scatter_add_sorted, top_k_blocked


def test_keep_mask_from_bits_keeps_one_minus_p_and_is_reproducible():
    for p in (0.0, 0.1, 0.5):
        mask = keep_mask_from_bits(np.random.default_rng(3).bit_generator, (400, 500), p)
        assert mask.shape == (400, 500) and mask.dtype == bool
        assert abs(mask.mean() - (1 - p)) < 0.005       # 200,000 draws: sd < 0.0012
    a, b = (keep_mask_from_bits(np.random.default_rng(7).bit_generator, (3, 5, 7), 0.3) for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_scatter_add_sorted_equals_add_at():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, 300)                       # many repeats
    values = rng.standard_normal((300, 8)).astype(np.float32)
    plain = np.zeros((60, 8), np.float32)
    np.add.at(plain, ids, values)
    fast = scatter_add_sorted(np.zeros((60, 8), np.float32), ids, values)
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)
    assert not fast[50:].any()                           # rows never named stay zero
    empty = scatter_add_sorted(np.ones((3, 2), np.float32), np.zeros(0, np.int64), np.zeros((0, 2), np.float32))
    np.testing.assert_array_equal(empty, np.ones((3, 2)))


@pytest.mark.parametrize("n, m, k", [(4, 64 * 40, 10), (3, 7704 * 2, 4), (2, 97, 3)])   # blocks, blocks, direct
def test_top_k_blocked_picks_what_a_full_sort_picks(n, m, k):
    scores = np.random.default_rng(m).standard_normal((n, m)).astype(np.float32)
    scores[0, :k + 5] = 10.0 + np.arange(k + 5)          # the best all in one block
    picked = top_k_blocked(np, scores, k, _top_k_plain)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(np.take_along_axis(scores, picked, axis=1),
                                  np.take_along_axis(scores, expected, axis=1))
