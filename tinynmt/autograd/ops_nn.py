"""Fused neural-network primitives: softmax, log-softmax, dropout, linear, embedding, layer
norm, and softmax cross-entropy.

Each is one Function because composing it from primitives is unstable (softmax, log of a
softmax) or slow (many temporaries over large arrays), or because PyTorch has it as one
(linear). Each is written as plain NumPy; where the speed corner (tinynmt/fast/) has a faster
formulation, `if fast.enabled():` runs it and the plain lines follow under `else:`.
Legend: ... leading axes, N rows, V classes, D features.
"""
from .. import fast
from ..backend import get_array_module, scatter_add_rows
from .function import Function


class Softmax(Function):
    def forward(self, x, axis=-1):
        xp = get_array_module(x)
        y = xp.exp(x - x.max(axis=axis, keepdims=True))         # shift by the max: exp cannot overflow
        y /= y.sum(axis=axis, keepdims=True)                     # in place: y is this op's own array
        self.y, self.axis = y, axis
        return y

    def backward(self, grad):
        # d/dx softmax: y * (g - sum(g * y))
        gy = grad * self.y
        return (gy - self.y * gy.sum(axis=self.axis, keepdims=True),)


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        xp = get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.y, self.axis = y, axis
        return y

    def backward(self, grad):
        # d/dx log_softmax: g - softmax(x) * sum(g)
        xp = get_array_module(grad)
        return (grad - xp.exp(self.y) * grad.sum(axis=self.axis, keepdims=True),)


class Dropout(Function):
    """Zero each element with probability p, scale the rest by 1 / (1 - p)."""

    def forward(self, x, p, generator):
        keep = generator.keep_mask(x.shape, p)                       # bool, True = kept
        scale = x.dtype.type(1.0 / (1.0 - p))
        self.fast = fast.enabled()              # backward takes forward's path, whatever the switch is then
        if self.fast:                                                # keeps the boolean mask
            self.keep, self.scale = keep, scale
            return fast.scale_kept(x, keep, scale)
        self.mask = keep * scale                                     # (...): 0 or 1 / (1 - p)
        return x * self.mask

    def backward(self, grad):
        # d/dx (x * mask) = mask
        if self.fast:
            return (fast.scale_kept(grad, self.keep, self.scale),)
        return (grad * self.mask,)


class Linear(Function):
    """x @ weight.T + bias for x (..., in), weight (out, in), bias (out,) or None.

    PyTorch's F.linear, the layer's textbook lines on the N rows of x: Y = X W^T + b, and
    dX = G W, dW = G^T X, db = the sum of G's rows (weight's gradient in weight's layout).
    `@` rather than np.dot, which zero-fills its output before the BLAS call writes it.
    """

    def forward(self, x, weight, bias=None):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape "
                             f"{weight.shape} (need (..., {weight.shape[1]}))")
        self.x, self.weight = x, weight
        x2 = x.reshape(-1, x.shape[-1])                              # (N, in)
        y = x2 @ weight.T                                            # (N, in) @ (in, out) -> (N, out)
        if bias is not None:
            y += bias                                                # in place: y is this op's own array
        return y.reshape(*x.shape[:-1], weight.shape[0])             # (..., out)

    def backward(self, grad):
        # dx = grad @ W, dW = grad^T @ x, db = sum of grad over rows
        xp = get_array_module(grad)
        g2 = grad.reshape(-1, grad.shape[-1])                        # (N, out)
        grad_x = grad_w = grad_b = None
        if self.needs_input_grad[0]:
            grad_x = (g2 @ self.weight).reshape(self.x.shape)        # (N, out) @ (out, in)
        if self.needs_input_grad[1]:
            grad_w = g2.T @ self.x.reshape(-1, self.x.shape[-1])     # (out, N) @ (N, in)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            if fast.enabled():                                       # as ones(N) @ g2
                grad_b = fast.sum_rows(xp, g2)
            else:
                grad_b = g2.sum(axis=0)                              # (N, out) -> (out,)
        return grad_x, grad_w, grad_b


class Embedding(Function):
    """Rows of `weight` (V, D) gathered at integer `ids` (...)."""

    def forward(self, weight, ids):
        self.ids, self.num_rows = ids, weight.shape[0]
        return weight[ids]                                           # (..., D)

    def backward(self, grad):
        # each row gathered n times receives the sum of its n gradients
        rows = grad.reshape(-1, grad.shape[-1])                      # (N, D)
        return (scatter_add_rows(self.ids.ravel(), rows, self.num_rows),)


class LayerNorm(Function):
    """Normalize the last axis to zero mean and unit variance, then scale and shift."""

    def forward(self, x, gamma, beta, eps=1e-5):
        xp = get_array_module(x)
        if fast.enabled():                                           # means as BLAS products
            xhat, rstd = fast.layer_norm_forward(xp, x, eps)
        else:
            centred = x - x.mean(axis=-1, keepdims=True)             # (..., D)
            var = (centred * centred).mean(axis=-1, keepdims=True)   # (..., 1)
            rstd = 1 / xp.sqrt(var + x.dtype.type(eps))              # (..., 1)
            xhat = centred * rstd                                    # (..., D)
        self.xhat, self.rstd, self.gamma = xhat, rstd, gamma
        return xhat * gamma + beta

    def backward(self, grad):
        # with xhat = (x - mean) * rstd and gx = g * gamma:
        # dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat))
        xp = get_array_module(grad)
        xhat, rstd, needs = self.xhat, self.rstd, self.needs_input_grad
        if fast.enabled():
            return fast.layer_norm_backward(xp, grad, xhat, rstd, self.gamma, needs[1], needs[2])
        rows = tuple(range(grad.ndim - 1))                           # every axis but D
        grad_gamma = (grad * xhat).sum(axis=rows) if needs[1] else None      # (D,)
        grad_beta = grad.sum(axis=rows) if needs[2] else None                # (D,)
        gx = grad * self.gamma                                       # (..., D)
        dx = rstd * (gx - gx.mean(axis=-1, keepdims=True)
                     - xhat * (gx * xhat).mean(axis=-1, keepdims=True))
        return dx, grad_gamma, grad_beta


class CrossEntropy(Function):
    """Mean softmax cross-entropy of logits (N, V) against class ids (N,).

    Targets equal to `ignore_index` count for nothing (an all-ignored batch gives 0).
    With label smoothing e the target distribution is (1 - e) on the class plus e / V
    everywhere, as in PyTorch.
    """

    def forward(self, logits, target, ignore_index=-100, label_smoothing=0.0):
        xp = get_array_module(logits)
        n_rows = logits.shape[0]
        valid = target != ignore_index                               # (N,)
        safe_target = xp.where(valid, target, 0)
        rows = xp.arange(n_rows)
        if fast.enabled():                                           # in cache-sized row blocks
            probs, row_max, total, row_mean = fast.softmax_rows_blocked(xp, logits, row_means=bool(label_smoothing))
        else:
            row_max = logits.max(axis=1)                             # (N,): exp cannot overflow
            exps = xp.exp(logits - row_max[:, None])                 # (N, V)
            total = exps.sum(axis=1)                                 # (N,)
            probs = exps / total[:, None]                            # (N, V)
            row_mean = logits.mean(axis=1) if label_smoothing else None   # (N,), label smoothing's term
        target_logit = logits[rows, safe_target] - row_max          # shifted as in the softmax, (N,)
        log_total = xp.log(total)
        nll = log_total - target_logit                               # -log p(target), (N,)
        if label_smoothing:
            uniform = log_total - (row_mean - row_max)               # -mean log p, (N,)
            nll = (1 - label_smoothing) * nll + label_smoothing * uniform
        count = xp.maximum(valid.sum(), 1).astype(logits.dtype)
        self.probs, self.rows, self.target = probs, rows, safe_target
        self.weight = valid.astype(logits.dtype) / count             # (N,)
        self.label_smoothing = label_smoothing
        return (nll * self.weight).sum()

    def backward(self, grad):
        # d/dlogits: softmax - target distribution, per row weighted by valid / count
        e, probs, row_scale = self.label_smoothing, self.probs, self.weight * grad      # (N,)
        if fast.enabled():                                           # written over probs
            return (fast.cross_entropy_grad_in_place(probs, self.rows, self.target, e, row_scale),)
        d = probs - probs.dtype.type(e / probs.shape[1])             # (N, V): e / V everywhere
        d[self.rows, self.target] -= probs.dtype.type(1 - e)         # and 1 - e on the target
        return (d * row_scale[:, None],)
