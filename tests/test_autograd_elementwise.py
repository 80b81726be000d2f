"""Elementwise primitives: forward against NumPy, gradients against central differences.

Inputs are kept away from kinks and poles: relu away from 0; log, sqrt, fractional powers
and divisors on positive values.
"""
import numpy as np
import pytest

from tinynmt import fast
from tinynmt.autograd import Tensor, gradcheck, relu, where
from tinynmt.backend import to_numpy


@pytest.fixture(autouse=True, params=["fast", "plain"])
def engine_path(request):
    """Every test here runs twice: with the speed corner's tricks (tinynmt/fast/) and without."""
    with fast.use_fast(request.param == "fast"):
        yield request.param


def sample(rng, shape, domain):
    """Float64 test values on a domain where the op is smooth."""
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if domain == "away_from_zero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 1.0, size=shape)
    return rng.standard_normal(shape)


UNARY = {   # name: (tensor op, NumPy formula, input domain)
    "neg": (lambda t: -t, lambda a: -a, "any"),
    "exp": (lambda t: t.exp(), np.exp, "any"),
    "log": (lambda t: t.log(), np.log, "positive"),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, "positive"),
    "relu": (lambda t: t.relu(), lambda a: np.maximum(a, 0), "away_from_zero"),
    "relu_function": (relu, lambda a: np.maximum(a, 0), "away_from_zero"),
    "tanh": (lambda t: t.tanh(), np.tanh, "any"),
    "pow_2": (lambda t: t ** 2, lambda a: a ** 2, "any"),
    "pow_3": (lambda t: t ** 3, lambda a: a ** 3, "any"),
    "pow_half": (lambda t: t ** 0.5, np.sqrt, "positive"),
    "pow_minus_1.5": (lambda t: t ** -1.5, lambda a: a ** -1.5, "positive"),
}

BINARY = {  # name: (tensor op, NumPy formula)
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
}

BROADCAST_SHAPES = [
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((2, 1), (1, 3)),
    ((2, 1, 3), (4, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((1, 3), (2, 1, 1)),
]


@pytest.mark.parametrize("name", UNARY)
def test_unary_forward_matches_numpy(xp, rng, leaf, name):
    op, formula, domain = UNARY[name]
    a = sample(rng, (3, 4), domain)
    out = op(leaf(a))
    assert out.shape == a.shape
    np.testing.assert_allclose(to_numpy(out.data), formula(a), rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3), (20, 30)], ids=["full_jacobian", "random_directions"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_gradcheck(xp, rng, leaf, name, shape):
    op, _, domain = UNARY[name]
    assert gradcheck(op, [leaf(sample(rng, shape, domain))])


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("a_shape, b_shape", BROADCAST_SHAPES)
def test_binary_broadcast_forward_and_gradcheck(xp, rng, leaf, name, a_shape, b_shape):
    op, formula = BINARY[name]
    a = rng.standard_normal(a_shape)
    b = sample(rng, b_shape, "positive" if name == "div" else "any")
    out = op(leaf(a), leaf(b))
    assert out.shape == np.broadcast_shapes(a_shape, b_shape)
    np.testing.assert_allclose(to_numpy(out.data), formula(a, b), rtol=1e-12)
    assert gradcheck(op, [leaf(a), leaf(b)])


@pytest.mark.parametrize("name", BINARY)
def test_binary_gradcheck_random_directions(xp, rng, leaf, name):
    op, _ = BINARY[name]
    a = rng.standard_normal((8, 1, 16))
    b = sample(rng, (6, 16), "positive" if name == "div" else "any")
    assert gradcheck(op, [leaf(a), leaf(b)])


ROW = np.array([0.5, -1.5, 2.0])      # broadcasts against (2, 3) from the left or the right
SCALAR_AND_ARRAY_OPERANDS = {   # name: (op on tensor x, the same formula on array a)
    "x + 2": (lambda x: x + 2, lambda a: a + 2),
    "2 + x": (lambda x: 2 + x, lambda a: 2 + a),
    "x - 2": (lambda x: x - 2, lambda a: a - 2),
    "2 - x": (lambda x: 2 - x, lambda a: 2 - a),
    "x * 2.5": (lambda x: x * 2.5, lambda a: a * 2.5),
    "2.5 * x": (lambda x: 2.5 * x, lambda a: 2.5 * a),
    "x / 2": (lambda x: x / 2, lambda a: a / 2),
    "2 / x": (lambda x: 2 / x, lambda a: 2 / a),
    "array + x": (lambda x: ROW + x, lambda a: ROW + a),
    "array - x": (lambda x: ROW - x, lambda a: ROW - a),
    "array * x": (lambda x: ROW * x, lambda a: ROW * a),
    "array / x": (lambda x: ROW / x, lambda a: ROW / a),
    "x - array": (lambda x: x - ROW, lambda a: a - ROW),
    "x / array": (lambda x: x / ROW, lambda a: a / ROW),
}


@pytest.mark.parametrize("name", SCALAR_AND_ARRAY_OPERANDS)
def test_scalar_and_array_operands(rng, name):
    op, formula = SCALAR_AND_ARRAY_OPERANDS[name]
    a = sample(rng, (2, 3), "positive")
    out = op(Tensor(a, requires_grad=True))
    assert isinstance(out, Tensor) and out.shape == (2, 3)
    np.testing.assert_allclose(out.data, formula(a), rtol=1e-12)
    assert gradcheck(op, [Tensor(a, requires_grad=True)])


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_mismatched_shapes_name_both(xp, leaf, name):
    op, _ = BINARY[name]
    with pytest.raises(ValueError) as info:
        op(leaf(np.ones((2, 3))), leaf(np.ones((4,))))
    message = str(info.value)
    assert name in message and "(2, 3)" in message and "(4,)" in message


# ----- masked_fill

@pytest.mark.parametrize("mask_shape", [(2, 3), (1, 3), (2, 1)])
def test_masked_fill_forward_and_gradcheck(xp, rng, leaf, mask_shape):
    a = rng.standard_normal((2, 3))
    mask = rng.random(mask_shape) < 0.5
    out = leaf(a).masked_fill(xp.asarray(mask), -1e10)
    np.testing.assert_array_equal(to_numpy(out.data), np.where(mask, -1e10, a))
    assert gradcheck(lambda t: t.masked_fill(xp.asarray(mask), -1e10), [leaf(a)])


def test_masked_fill_gradient_is_zero_at_filled_positions(xp, leaf):
    mask = np.array([[True, False, True], [False, False, True]])
    x = leaf(np.arange(6.0).reshape(2, 3))
    x.masked_fill(xp.asarray(mask), 0.0).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), (~mask).astype(float))


def test_masked_fill_takes_a_comparison_tensor_or_a_0_1_mask(xp, leaf):
    x = leaf(np.arange(4.0))
    ids = Tensor(xp.asarray(np.array([5, 0, 7, 0])))
    x.masked_fill(ids == 0, -1.0).sum().backward()            # the tutorial's mask == 0
    np.testing.assert_array_equal(to_numpy(x.grad), [1, 0, 1, 0])
    y = leaf(np.arange(4.0))
    out = y.masked_fill(xp.asarray(np.array([1, 0, 1, 0])), 9.0)  # integers, not booleans
    out.sum().backward()
    np.testing.assert_array_equal(to_numpy(out.data), [9, 1, 9, 3])
    np.testing.assert_array_equal(to_numpy(y.grad), [0, 1, 0, 1])


def test_masked_fill_mismatched_mask_names_both_shapes(xp, leaf):
    with pytest.raises(ValueError) as info:
        leaf(np.ones((2, 3))).masked_fill(xp.asarray(np.ones((2, 2), dtype=bool)), 0.0)
    assert "(2, 3)" in str(info.value) and "(2, 2)" in str(info.value)


# ----- where

@pytest.mark.parametrize("a_shape, b_shape", [((2, 3), (2, 3)), ((2, 3), (3,)), ((1, 3), (2, 1))])
def test_where_forward_and_gradcheck(xp, rng, leaf, a_shape, b_shape):
    cond = np.array([[True, False, True], [False, True, True]])
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    out = where(Tensor(xp.asarray(cond)), leaf(a), leaf(b))
    np.testing.assert_array_equal(to_numpy(out.data), np.where(cond, a, b))
    assert gradcheck(lambda s, t: where(Tensor(xp.asarray(cond)), s, t), [leaf(a), leaf(b)])


def test_where_gradient_goes_to_the_chosen_side(xp, leaf):
    cond = np.array([True, False, True, False])
    a, b = leaf(np.ones(4)), leaf(np.ones(4))
    where(xp.asarray(cond), a, b).sum().backward()
    np.testing.assert_array_equal(to_numpy(a.grad), cond.astype(float))
    np.testing.assert_array_equal(to_numpy(b.grad), (~cond).astype(float))


def test_where_with_a_python_number_on_either_side(xp, rng, leaf):
    cond = xp.asarray(np.array([True, False, False]))
    a = rng.standard_normal(3)
    np.testing.assert_array_equal(to_numpy(where(cond, leaf(a), 0.0).data), [a[0], 0, 0])
    np.testing.assert_array_equal(to_numpy(where(cond, 7.0, leaf(a)).data), [7, a[1], a[2]])
    assert gradcheck(lambda t: where(cond, 0.5, t), [leaf(a)])
