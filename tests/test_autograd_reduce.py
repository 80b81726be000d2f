"""Reductions (sum, mean, max): forward against NumPy, then gradcheck."""
import numpy as np
import pytest

from tinynmt import fast
from tinynmt.autograd import gradcheck
from tinynmt.backend import to_numpy


@pytest.fixture(autouse=True, params=["fast", "plain"])
def engine_path(request):
    """Every test here runs twice: with the speed corner's tricks (tinynmt/fast/) and without."""
    with fast.use_fast(request.param == "fast"):
        yield request.param


AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]
REDUCTIONS = {"sum": np.sum, "mean": np.mean, "max": np.max}


def distinct_values(rng, shape):
    """Values 0.1 apart in random order: max has no ties, even after an eps nudge."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_forward_and_gradcheck(xp, rng, leaf, name, axis, keepdims):
    a = distinct_values(rng, (2, 3, 2))
    op = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)
    out = op(leaf(a))
    expected = REDUCTIONS[name](a, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape
    np.testing.assert_allclose(to_numpy(out.data), expected, rtol=1e-12)
    assert gradcheck(op, [leaf(a)])


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_gradcheck_random_directions(xp, rng, leaf, name):
    a = distinct_values(rng, (6, 20, 40))
    assert gradcheck(lambda t: getattr(t, name)(axis=(0, -1)), [leaf(a)])


def test_max_splits_the_gradient_between_ties(xp, leaf):
    x = leaf(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]))
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [[0, 0.5, 0.5], [1, 0, 0]])


def test_mean_gradient_is_one_over_count(xp, leaf):
    x = leaf(np.ones((4, 5)))
    x.mean(axis=0).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), np.full((4, 5), 0.25))
