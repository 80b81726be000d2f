"""The speed corner's functions (tinynmt/fast/) one by one, each against the plain NumPy it replaces."""
import numpy as np
import pytest

from tinynmt import fast
from tinynmt.backend import to_numpy
from tinynmt.decoding.search import _top_k_plain
from tinynmt.fast.rowstats import mean_last, mean_last_of_product, sum_rows, sum_rows_of_product


# ----- fast/cpu.py: NumPy only

def test_keep_mask_from_bits_keeps_one_minus_p_and_is_reproducible():
    for p in (0.0, 0.1, 0.5):
        mask = fast.keep_mask_from_bits(np.random.default_rng(3).bit_generator, (400, 500), p)
        assert mask.shape == (400, 500) and mask.dtype == bool
        assert abs(mask.mean() - (1 - p)) < 0.005       # 200,000 draws: sd < 0.0012
    a, b = (fast.keep_mask_from_bits(np.random.default_rng(7).bit_generator, (3, 5, 7), 0.3) for _ in range(2))
    np.testing.assert_array_equal(a, b)


def test_scatter_add_sorted_equals_add_at():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, 300)                       # many repeats
    values = rng.standard_normal((300, 8)).astype(np.float32)
    plain = np.zeros((60, 8), np.float32)
    np.add.at(plain, ids, values)
    summed = fast.scatter_add_sorted(np.zeros((60, 8), np.float32), ids, values)
    np.testing.assert_allclose(summed, plain, rtol=1e-5, atol=1e-5)
    assert not summed[50:].any()                         # rows never named stay zero
    empty = fast.scatter_add_sorted(np.ones((3, 2), np.float32), np.zeros(0, np.int64), np.zeros((0, 2), np.float32))
    np.testing.assert_array_equal(empty, np.ones((3, 2)))


@pytest.mark.parametrize("n, m, k", [(4, 64 * 40, 10), (3, 7704 * 2, 4), (2, 97, 3), (2, 64 * 8, 3)])
def test_top_k_blocked_picks_what_a_full_sort_picks(n, m, k):
    """Blocks, blocks, no block length divides 97, too few blocks for k (8 < 4k): direct."""
    scores = np.random.default_rng(m).standard_normal((n, m)).astype(np.float32)
    scores[0, :k + 5] = 10.0 + np.arange(k + 5)          # the best all in one block
    with fast.use_fast(True):
        picked = fast.top_k_blocked(np, scores, k, _top_k_plain)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(np.take_along_axis(scores, picked, axis=1),
                                  np.take_along_axis(scores, expected, axis=1))


def test_top_k_blocked_is_plain_top_k_when_the_switch_is_off():
    scores = np.random.default_rng(0).standard_normal((3, 64 * 40)).astype(np.float32)
    seen = []
    top_k = lambda s, k: seen.append(s.shape) or _top_k_plain(s, k)   # noqa: E731
    with fast.use_fast(True):
        fast.top_k_blocked(np, scores, 10, top_k)
    assert seen == [(3, 40), (3, 10 * 64)]               # block maxima, then the best blocks' entries
    seen.clear()
    with fast.plain():
        picked = fast.top_k_blocked(np, scores, 10, top_k)
    assert seen == [(3, 64 * 40)]                        # one call over every score
    np.testing.assert_array_equal(picked, _top_k_plain(scores, 10))


def test_keep_freed_memory_does_nothing_when_the_switch_is_off(monkeypatch):
    import ctypes
    monkeypatch.setattr(ctypes, "CDLL", lambda name: pytest.fail("libc was loaded"))
    with fast.plain():
        assert fast.keep_freed_memory() is False


# ----- fast/cross_entropy.py

@pytest.mark.parametrize("block_rows", [1, 3, 7, 32, 100])
@pytest.mark.parametrize("n_rows", [0, 10, 69])
def test_softmax_rows_blocked_equals_the_plain_formula(xp, rng, block_rows, n_rows):
    logits = rng.standard_normal((n_rows, 13)) * 5
    probs, row_max, total, row_mean = fast.softmax_rows_blocked(xp, xp.asarray(logits), block_rows, row_means=True)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True, initial=-np.inf))
    np.testing.assert_allclose(to_numpy(row_mean), logits.sum(axis=1) / 13, rtol=1e-14)
    assert fast.softmax_rows_blocked(xp, xp.asarray(logits), block_rows)[3] is None
    np.testing.assert_allclose(to_numpy(row_max), logits.max(axis=1, initial=-np.inf), rtol=0)
    np.testing.assert_allclose(to_numpy(total), expected.sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(to_numpy(probs), expected / expected.sum(axis=1, keepdims=True), rtol=1e-14)


@pytest.mark.parametrize("block_rows", [1, 4, 32])
@pytest.mark.parametrize("e", [0.0, 0.1])
def test_cross_entropy_grad_in_place_equals_the_plain_lines(xp, rng, e, block_rows):
    probs = rng.dirichlet(np.ones(9), size=6)                    # (6, 9) rows that sum to 1
    target, scale = np.array([0, 8, 3, 3, 1, 0]), rng.uniform(0, 1, 6)
    plain = probs - e / 9
    plain[np.arange(6), target] -= 1 - e
    plain *= scale[:, None]
    given = xp.asarray(probs)
    d = fast.cross_entropy_grad_in_place(given, xp.arange(6), xp.asarray(target), e, xp.asarray(scale), block_rows)
    assert d is given                                            # written over probs
    np.testing.assert_allclose(to_numpy(d), plain, rtol=1e-13, atol=1e-16)


# ----- fast/rowstats.py: means and row sums as BLAS products

@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 3, 7), (0, 7)])
def test_rowstats_equal_numpy_reductions(xp, rng, shape):
    a, b = rng.standard_normal(shape) * 3 + 1, rng.standard_normal(shape)
    xa, xb = xp.asarray(a), xp.asarray(b)
    lead = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(to_numpy(mean_last(xp, xa)), a.mean(axis=-1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_numpy(mean_last_of_product(xp, xa, xb)), (a * b).mean(axis=-1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_numpy(sum_rows(xp, xa)), a.sum(axis=lead), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_numpy(sum_rows_of_product(xp, xa, xb)), (a * b).sum(axis=lead), rtol=1e-13, atol=1e-15)


def test_rowstats_take_non_contiguous_views(xp, rng):
    a = rng.standard_normal((4, 6, 5))
    view = xp.asarray(a).transpose(1, 0, 2)                  # (6, 4, 5), not C-contiguous
    np.testing.assert_allclose(to_numpy(mean_last(xp, view)), a.transpose(1, 0, 2).mean(axis=-1), rtol=1e-13)
    np.testing.assert_allclose(to_numpy(sum_rows(xp, view)), a.sum(axis=(0, 1)), rtol=1e-13)


def test_layer_norm_float32_matches_the_plain_formula(xp, rng):
    """The tutorial's shapes in float32: BLAS means give the plain NumPy layer norm's numbers."""
    x = (rng.standard_normal((8, 13, 256)) * 2 + 0.5).astype(np.float32)
    xhat, rstd = fast.layer_norm_forward(xp, xp.asarray(x), 1e-5)
    assert xhat.dtype == rstd.dtype == np.float32
    mean = x.mean(axis=-1, keepdims=True)
    plain_rstd = 1 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + np.float32(1e-5))
    np.testing.assert_allclose(to_numpy(rstd), plain_rstd, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(xhat), (x - mean) * plain_rstd, rtol=1e-4, atol=1e-5)


# ----- the small ones

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_kept_is_x_times_the_scaled_mask_bit_for_bit(xp, rng, dtype):
    x = xp.asarray(rng.standard_normal((5, 7)).astype(dtype))
    keep, scale = xp.asarray(rng.random((5, 7)) > 0.3), dtype(1 / 0.7)
    y = fast.scale_kept(x, keep, scale)
    assert y.dtype == dtype
    np.testing.assert_array_equal(to_numpy(y), to_numpy(x * (keep * scale)))
    assert not np.shares_memory(to_numpy(y), to_numpy(x))


@pytest.mark.parametrize("a_shape, b_shape", [((2, 3, 4), (4, 5)), ((2, 2, 1, 3), (3, 2))])
def test_matmul_folded_equals_broadcast_matmul_and_its_gradients(xp, rng, a_shape, b_shape):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    grad = rng.standard_normal(a_shape[:-1] + b_shape[-1:])
    assert fast.folds(a, b) and not fast.folds(b, b) and not fast.folds(a, a.swapaxes(-1, -2))
    np.testing.assert_allclose(to_numpy(fast.matmul_folded(xp.asarray(a), xp.asarray(b))), a @ b, rtol=1e-13)
    grad_a, grad_b = fast.matmul_folded_grads(xp.asarray(grad), xp.asarray(a), xp.asarray(b), (True, True))
    np.testing.assert_allclose(to_numpy(grad_a), grad @ b.T, rtol=1e-13)
    lead = tuple(range(len(a_shape) - 2))
    np.testing.assert_allclose(to_numpy(grad_b), (a.swapaxes(-1, -2) @ grad).sum(axis=lead), rtol=1e-12)
    assert fast.matmul_folded_grads(xp.asarray(grad), xp.asarray(a), xp.asarray(b), (False, True))[0] is None


def test_in_place_sums_copy_a_shared_first_gradient_then_add_in_place():
    shared = np.ones(3)
    grads, sums = {1: shared}, fast.InPlaceSums()
    assert sums.leaf_grad(1, shared) is not shared               # not ours: a leaf gets a copy
    sums.add(grads, 1, np.full(3, 2.0))
    first_sum = grads[1]
    assert first_sum is not shared and (shared == 1).all()       # the shared array is untouched
    sums.add(grads, 1, np.full(3, 4.0))
    assert grads[1] is first_sum and (first_sum == 7).all()      # our sum: added in place
    assert sums.leaf_grad(1, first_sum) is first_sum


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_scalar_is_a_numpy_scalar_of_the_dtype(dtype):
    value = fast.host_scalar(0.1, dtype)
    assert isinstance(value, np.generic) and value.dtype == dtype and value == dtype(0.1)
