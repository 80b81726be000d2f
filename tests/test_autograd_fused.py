"""The speed corners of the engine against the plain code they replace: same numbers, and
float64 gradchecks through them."""
import numpy as np
import pytest

from tinynmt.autograd import cross_entropy, gradcheck
from tinynmt.autograd.ops_nn import CE_BLOCK_ROWS, softmax_rows
from tinynmt.backend import to_numpy


# ----- softmax_rows: row blocks (CrossEntropy's forward)

@pytest.mark.parametrize("block_rows", [None, 1, 3, 7, 100])
def test_softmax_rows_in_blocks_equals_the_plain_formula(xp, rng, block_rows):
    logits = rng.standard_normal((10, 13)) * 5
    probs, row_max, total = softmax_rows(xp.asarray(logits), block_rows)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(to_numpy(row_max), logits.max(axis=1), rtol=0)
    np.testing.assert_allclose(to_numpy(total), expected.sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(to_numpy(probs), expected / expected.sum(axis=1, keepdims=True), rtol=1e-14)


def test_cross_entropy_over_several_row_blocks(xp, rng, leaf):
    """More rows than one block: the loss is the plain formula's and the gradient checks."""
    n_rows = 2 * CE_BLOCK_ROWS + 5
    logits = rng.standard_normal((n_rows, 9)) * 3
    target = rng.integers(0, 9, size=n_rows)
    target[::4] = 1
    t = xp.asarray(target)
    op = lambda z: cross_entropy(z, t, ignore_index=1, label_smoothing=0.1)
    logp = logits - logits.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    valid = target != 1
    per_row = -0.9 * logp[np.arange(n_rows), target] - 0.1 * logp.mean(axis=1)
    np.testing.assert_allclose(op(leaf(logits)).item(), per_row[valid].mean(), rtol=1e-12)
    assert gradcheck(op, [leaf(logits)], max_full=0)


# ----- rowstats: means and row sums as BLAS products (LayerNorm)

@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 3, 7), (0, 7)])
def test_rowstats_equal_numpy_reductions(xp, rng, shape):
    from tinynmt.fast.rowstats import mean_last, mean_last_of_product, sum_rows, sum_rows_of_product
    a, b = rng.standard_normal(shape) * 3 + 1, rng.standard_normal(shape)
    xa, xb = xp.asarray(a), xp.asarray(b)
    lead = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(to_numpy(mean_last(xa)), a.mean(axis=-1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_numpy(mean_last_of_product(xa, xb)), (a * b).mean(axis=-1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_numpy(sum_rows(xa)), a.sum(axis=lead), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_numpy(sum_rows_of_product(xa, xb)), (a * b).sum(axis=lead), rtol=1e-13, atol=1e-15)


def test_rowstats_take_non_contiguous_views(xp, rng):
    from tinynmt.fast.rowstats import mean_last, sum_rows
    a = rng.standard_normal((4, 6, 5))
    view = xp.asarray(a).transpose(1, 0, 2)                  # (6, 4, 5), not C-contiguous
    np.testing.assert_allclose(to_numpy(mean_last(view)), a.transpose(1, 0, 2).mean(axis=-1), rtol=1e-13)
    np.testing.assert_allclose(to_numpy(sum_rows(view)), a.sum(axis=(0, 1)), rtol=1e-13)


def test_layer_norm_float32_matches_the_plain_formula(rng):
    """The tutorial's shapes in float32: BLAS means give the plain NumPy layer norm's numbers."""
    from tinynmt.autograd import Tensor, layer_norm
    x = (rng.standard_normal((8, 13, 256)) * 2 + 0.5).astype(np.float32)
    gamma, beta = rng.standard_normal(256).astype(np.float32), rng.standard_normal(256).astype(np.float32)
    out = layer_norm(Tensor(x), Tensor(gamma), Tensor(beta)).data
    assert out.dtype == np.float32
    mean = x.mean(axis=-1, keepdims=True)
    plain = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + np.float32(1e-5)) * gamma + beta
    np.testing.assert_allclose(out, plain, rtol=1e-4, atol=1e-5)
