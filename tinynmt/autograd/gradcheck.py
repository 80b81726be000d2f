"""Check analytic gradients against float64 central differences."""
import numpy as np

from ..backend import get_array_module, to_numpy
from .function import no_grad


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the finite-difference one."""


def _output_array(fn, inputs):
    with no_grad():
        return fn(*inputs).data


def _analytic_vjp(fn, inputs, weights):
    """Gradients of sum(fn(inputs) * weights) with respect to each input."""
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    op = type(out.grad_fn).__name__ if out.grad_fn is not None else getattr(fn, "__name__", "fn")
    out.backward(weights)
    xp = get_array_module(weights)
    return [t.grad if t.grad is not None else xp.zeros_like(t.data) for t in inputs], op


def _numeric_directional(fn, inputs, weights, directions, eps):
    """(sum(f(x + eps*u) * w) - sum(f(x - eps*u) * w)) / (2 eps) for one direction u per input."""
    originals = [t.data.copy() for t in inputs]
    for t, x0, u in zip(inputs, originals, directions):
        t.data = x0 + eps * u
    plus = (_output_array(fn, inputs) * weights).sum()
    for t, x0, u in zip(inputs, originals, directions):
        t.data = x0 - eps * u
    minus = (_output_array(fn, inputs) * weights).sum()
    for t, x0 in zip(inputs, originals):
        t.data = x0
    return float((plus - minus) / (2 * eps))


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, n_directions=8, max_full=4096, seed=0):
    """True if fn's gradients match central differences, else raise GradcheckError.

    `inputs` are float64 tensors with requires_grad. Small problems are checked element by
    element (the full Jacobian, one output weighting and one input element at a time); large
    ones along `n_directions` random input directions and random output weightings.
    """
    for t in inputs:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs, got {t.dtype}")
    rng = np.random.default_rng(seed)
    xp = get_array_module(inputs[0].data)
    out_shape = _output_array(fn, inputs).shape
    n_in = sum(t.size for t in inputs)
    n_out = int(np.prod(out_shape))
    worst = None  # (error, analytic, numeric, where)

    def record(analytic, numeric, where):
        nonlocal worst
        err = abs(analytic - numeric) - (atol + rtol * abs(numeric))
        if worst is None or err > worst[0]:
            worst = (err, analytic, numeric, where)

    if n_in * n_out <= max_full:
        for j in range(n_out):       # one Jacobian row per output element
            w = xp.zeros(n_out, dtype=np.float64)
            w[j] = 1
            w = w.reshape(out_shape)
            grads, op = _analytic_vjp(fn, inputs, w)
            for i, t in enumerate(inputs):
                for k in range(t.size):
                    dirs = [xp.zeros_like(s.data) for s in inputs]
                    dirs[i].reshape(-1)[k] = 1
                    numeric = _numeric_directional(fn, inputs, w, dirs, eps)
                    analytic = float(to_numpy(grads[i]).reshape(-1)[k])
                    record(analytic, numeric, f"d output[{j}] / d input {i}[{k}]")
    else:
        w = xp.asarray(rng.standard_normal(out_shape))
        grads, op = _analytic_vjp(fn, inputs, w)
        for d in range(n_directions):
            dirs = [xp.asarray(rng.standard_normal(t.shape)) for t in inputs]
            numeric = _numeric_directional(fn, inputs, w, dirs, eps)
            analytic = float(sum((g * u).sum() for g, u in zip(grads, dirs)))
            record(analytic, numeric, f"random direction {d}")
    if worst[0] > 0:
        raise GradcheckError(f"gradcheck failed for {op}: {worst[3]}: analytic {worst[1]:.8g} "
                             f"vs numeric {worst[2]:.8g}")
    return True
