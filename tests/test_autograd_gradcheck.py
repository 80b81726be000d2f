"""gradcheck itself: it passes correct gradients and reports wrong ones precisely."""
import re

import numpy as np
import pytest

from tinynmt.autograd import Function, GradcheckError, Tensor, gradcheck

NUMBER = r"(-?[0-9.]+(?:e[-+]?\d+)?)"


class WrongSquare(Function):
    """x ** 2 with the derivative deliberately wrong: 3x instead of 2x."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        # d(x^2)/dx = 2x -- but this returns 3x on purpose
        return (grad * 3 * self.x,)


class RightSquare(WrongSquare):
    def backward(self, grad):
        # d(x^2)/dx = 2x
        return (grad * 2 * self.x,)


def test_correct_gradients_pass(xp, rng, leaf):
    assert gradcheck(lambda t: RightSquare.apply(t), [leaf(rng.standard_normal((2, 3)))]) is True
    assert gradcheck(lambda t: RightSquare.apply(t), [leaf(rng.standard_normal((80, 90)))]) is True


def test_wrong_gradient_names_the_op_the_worst_element_and_both_values(xp, leaf):
    a = np.array([0.5, -2.0, 1.0])               # the worst error is at the largest |x|: index 1
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: WrongSquare.apply(t), [leaf(a)])
    message = str(info.value)
    assert "WrongSquare" in message
    assert "output[1]" in message and "input 0[1]" in message
    analytic, numeric = map(float, re.search(f"analytic {NUMBER} vs numeric {NUMBER}", message)
                            .groups())
    assert analytic == pytest.approx(3 * a[1], rel=1e-6)
    assert numeric == pytest.approx(2 * a[1], rel=1e-5)


def test_wrong_gradient_is_caught_along_random_directions(xp, rng, leaf):
    with pytest.raises(GradcheckError, match="WrongSquare.*random direction"):
        gradcheck(lambda t: WrongSquare.apply(t), [leaf(rng.standard_normal((80, 90)))])


def test_wrong_gradient_of_the_second_input_is_found(xp, rng, leaf):
    op = lambda s, t: s * WrongSquare.apply(t)
    with pytest.raises(GradcheckError, match=r"input 1\["):
        gradcheck(op, [leaf(rng.standard_normal(3)), leaf(rng.uniform(1, 2, 3))])


def test_a_function_that_forgets_an_input_fails(xp, leaf):
    class DropsGradient(Function):
        def forward(self, x):
            return x * 2

        def backward(self, grad):
            return (None,)

    with pytest.raises(GradcheckError, match="DropsGradient"):
        gradcheck(lambda t: DropsGradient.apply(t), [leaf(np.ones(2))])


def test_gradcheck_needs_float64_inputs():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2, [Tensor(np.ones(3, dtype=np.float32), requires_grad=True)])


def test_gradcheck_leaves_the_inputs_as_they_were(xp, rng, leaf):
    a = rng.standard_normal(4)
    x = leaf(a)
    gradcheck(lambda t: t.exp(), [x])
    np.testing.assert_array_equal(np.asarray(x.data.tolist()), a)
