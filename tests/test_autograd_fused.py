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

