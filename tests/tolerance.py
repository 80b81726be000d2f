"""How the parity tests compare float32 results computed two ways (tinynmt and PyTorch, or PyTorch
on two machines): each array against a scale, so that a bound means the same on every CPU and BLAS.

Most arrays are compared relatively: the largest difference against the array's own largest entry.
A quantity whose true value is zero holds only rounding noise, which changes with the summation
order of the BLAS and CPU at hand, so a relative bound on it fails on the next machine. Such a
quantity is compared absolutely: its distance from zero against the scale of the tensors it
belongs with. The one the tests meet is the gradient of every attention's key bias `fc_k.bias`:
adding b_k to every key adds q . b_k to all of a query's scores, which softmax cancels.

Adam divides by each coordinate's gradient size, so a coordinate whose gradient is noise, or
near eps, moves by what the noise decides: after Adam such coordinates are only bounded by the
largest move Adam can make; every other coordinate keeps its relative bound.
"""
import numpy as np


def largest(array):
    """The largest absolute entry of an array (0 for an empty one)."""
    array = np.asarray(array)
    return float(np.abs(array).max()) if array.size else 0.0


def mismatch(ours, theirs, name, rtol):
    """None, or a line saying that ours and theirs differ by more than rtol of their largest entry."""
    scale = max(largest(ours), largest(theirs), 1e-30)
    error = largest(np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64))
    return None if error <= rtol * scale else f"{name}: max error {error:.3g} vs scale {scale:.3g}"


def assert_close(ours, theirs, name, rtol=1e-4):
    """Equal up to rtol of the larger array's largest entry."""
    message = mismatch(ours, theirs, name, rtol)
    assert message is None, message


def is_zero_in_exact_arithmetic(name):
    """Whether the gradient of the parameter `name` is zero in exact arithmetic: every key bias."""
    return name.endswith("fc_k.bias")


def module_of(name):
    """The module a parameter belongs to: 'decoder.layers.0.self_attention' for its fc_k.bias."""
    return name.rsplit(".", 2)[0]


def gradient_mismatches(ours, theirs, rtol=1e-4):
    """One line per parameter whose gradients ({name: array} on each side) differ beyond the bound."""
    failures = []
    for name in theirs:
        if not is_zero_in_exact_arithmetic(name):
            failures.append(mismatch(ours[name], theirs[name], name, rtol))
            continue
        # noise made of the module's sums (its fc_q, fc_k, fc_v, fc_o): each side's distance from
        # zero against the module's largest gradient
        module = module_of(name)
        scale = max(largest(grads[other]) for grads in (ours, theirs) for other in grads
                    if module_of(other) == module and not is_zero_in_exact_arithmetic(other))
        error = max(largest(ours[name]), largest(theirs[name]))
        if error > rtol * scale:
            failures.append(f"{name} (zero in exact arithmetic): max entry {error:.3g} "
                            f"vs its module's largest gradient {scale:.3g}")
    return [failure for failure in failures if failure is not None]


def largest_adam_move(lr, steps, betas):
    """The most Adam can move a coordinate in `steps` steps, whatever its gradients."""
    # at step t, |m_hat| / sqrt(v_hat) <= (1 - b1) / (1 - b1**t) * sqrt(sum over k < t of
    # (b1**2 / b2)**k) * sqrt((1 - b2**t) / (1 - b2)) by Cauchy-Schwarz (1.007 at t = 5 for betas
    # (0.9, 0.98)); eps only shortens a step; 1% spares rounding and AdamW's lr * weight_decay * p
    b1, b2 = betas
    total = 0.0
    for t in range(1, steps + 1):
        ratio = sum((b1 ** 2 / b2) ** k for k in range(t)) ** 0.5
        total += (1 - b1) / (1 - b1 ** t) * ratio * ((1 - b2 ** t) / (1 - b2)) ** 0.5
    return 1.01 * lr * total


def steps_decided_by_noise(name, first_grads, eps):
    """Where rounding noise decides Adam's steps, from the gradients of its first step (each side's)."""
    # the first step is lr * g / (|g| + eps): within 1e3 * eps of zero it turns on how g compares
    # with eps and with its own noise, and later steps divide by it too. An exact zero is padding
    # or an unused row, no noise, except in a gradient that is zero in exact arithmetic.
    small = [np.abs(grad) < 1e3 * eps for grad in first_grads]
    if not is_zero_in_exact_arithmetic(name):
        small = [is_small & (grad != 0) for is_small, grad in zip(small, first_grads)]
    return np.logical_or.reduce(small)


def adam_mismatches(ours, theirs, start, first_grads, lr, steps, betas, eps, rtol=1e-4):
    """One line per parameter ({name: array}) that differs beyond the bound after Adam's steps."""
    # first_grads: each side's {name: gradient} as Adam saw it at the first step. Where noise
    # decides the steps, each side's move is bounded; every other coordinate is compared relatively.
    failures, bound = [], largest_adam_move(lr, steps, betas)
    for name in theirs:
        noisy = steps_decided_by_noise(name, [grads[name] for grads in first_grads], eps)
        for side, after in (("ours", ours[name]), ("theirs", theirs[name])):
            moved = largest(np.where(noisy, after - start[name], 0))
            if moved > bound:
                failures.append(f"{name}: {side} moved {moved:.3g} where noise decides, "
                                f"beyond Adam's largest move {bound:.3g}")
        failures.append(mismatch(np.where(noisy, 0, ours[name]), np.where(noisy, 0, theirs[name]),
                                 name, rtol))
    return [failure for failure in failures if failure is not None]
