"""The flat Adam: every parameter, gradient and moment in one flat buffer each, so a step is a
dozen whole-buffer operations however many parameters there are; and clipping on that buffer.

Plain: tinynmt/optim/adam.py:Adam (a dozen small operations per parameter: about 12 x 114
a step for the tutorial's model, each a kernel launch on a GPU) and
tinynmt/optim/clip.py:clip_grad_norm_ (a dot product and a scaling per parameter). Same
numbers up to float rounding and the same state_dict, so a checkpoint moves between them
(tests/test_flat_adam.py). benchmarks/bench_flat_adam.py times both.

Nothing a user does to a parameter's array stops it from training: `init.zeros_(p)`,
`reset_parameters`, `p.data = array` or anything else that gives a parameter a new array is
noticed at the next `step` (or `flat_param`), which copies the new values into the flat
buffer and makes the parameter a view of it again. A new array the buffer cannot hold
(another shape, dtype or device) is a ValueError there, not a frozen parameter.
"""
import math

import numpy as np

from ..backend import get_array_module, to_device, to_numpy


class FlatAdam:
    """Adam (tinynmt/optim/adam.py:Adam, whose docstring is the algorithm) over flat buffers.

    flat_param holds every parameter's numbers, each p.data a view of its slice; zero_grad makes
    each p.grad a view of flat_grad, so backward accumulates straight into what `step` reads.
    Build it after moving the model to its device.
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer was given no parameters")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.t = 0
        xp = get_array_module(self.params[0].data)
        dtype = self.params[0].dtype
        sizes = [p.size for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self._flat_param = xp.empty(self.offsets[-1], dtype=dtype)
        self.flat_grad = xp.zeros_like(self._flat_param)
        self.param_views = self.views_of(self._flat_param)
        self.grad_views = self.views_of(self.flat_grad)
        for p, view in zip(self.params, self.param_views):
            view[...] = p.data                  # in the first parameter's dtype
            p.data = view
        self.m = xp.zeros_like(self._flat_param)
        self.v = xp.zeros_like(self._flat_param)
        self.scratch = xp.empty_like(self._flat_param)
        self.scratch2 = None                     # g + weight_decay * param, made when first needed

    def views_of(self, flat):
        """One view of `flat` per parameter, shaped like it."""
        return [flat[start:stop].reshape(p.shape)
                for p, start, stop in zip(self.params, self.offsets, self.offsets[1:])]

    @property
    def flat_param(self):
        """The buffer of every parameter's numbers; writing into it writes the parameters."""
        self.adopt_replaced_arrays()
        return self._flat_param

    def adopt_replaced_arrays(self):
        """Make a view of the flat buffer again of each parameter whose array was replaced."""
        for i, (p, view) in enumerate(zip(self.params, self.param_views)):
            if p.data is not view:                 # one identity check a parameter: cheap
                self.adopt(i)

    def adopt(self, i):
        """Copy parameter i's new array into its slice of flat_param and make p.data that slice;
        ValueError where that would change its shape, dtype or device."""
        p, view = self.params[i], self.param_views[i]
        if p.shape != view.shape or p.dtype != view.dtype:
            raise ValueError(f"parameter {i} is now {p.dtype} {p.shape}, its optimizer's slice "
                             f"{view.dtype} {view.shape}: build the optimizer after changing them")
        if get_array_module(p.data) is not get_array_module(view):
            raise ValueError(f"parameter {i} moved to {p.device} after its optimizer was built: "
                             f"build the optimizer after model.to(device)")
        view[...] = p.data
        p.data = view

    def zero_grad(self):
        """Zero the flat gradient buffer and let each .grad be a view of it, so that backward
        accumulates straight into the buffer that `step` reads."""
        self.flat_grad.fill(0)
        for p, view in zip(self.params, self.grad_views):
            p.grad = view

    def gather_grads(self):
        """The flat gradient buffer, with any .grad that is not a view of it copied in (and made
        that view again) and a missing one as zeros."""
        for p, view in zip(self.params, self.grad_views):
            if p.grad is None:
                view.fill(0)
            elif p.grad is not view:
                view[...] = p.grad
                p.grad = view
        return self.flat_grad

    # Speed: on the CPU the update walks the flat buffers in blocks of CPU_BLOCK numbers, so
    # its dozen passes read and write the L2 cache instead of memory. Measured on 10.4 M
    # parameters (2-core Xeon, 2026-12-02): 36 ms -> 27 ms an update; the plain version is
    # one call of `update` over the whole buffers, which is what the GPU does.
    CPU_BLOCK = 65536

    def step(self):
        """One update of every parameter from its .grad, in place on the flat buffers."""
        self.adopt_replaced_arrays()
        xp = get_array_module(self._flat_param)
        self.t += 1
        dt = self._flat_param.dtype.type
        g, param = self.gather_grads(), self._flat_param
        if self.weight_decay and not self.decoupled:   # L2: g + weight_decay * param, not in .grad
            if self.scratch2 is None:
                self.scratch2 = xp.empty_like(param)
            xp.multiply(param, dt(self.weight_decay), out=self.scratch2)
            g = xp.add(self.scratch2, g, out=self.scratch2)
        n = param.size
        block = self.CPU_BLOCK if xp is np else n
        for start in range(0, n, block):
            part = slice(start, min(start + block, n))
            self.update(g[part], self.m[part], self.v[part], self.scratch[part], param[part])

    def update(self, g, m, v, tmp, param):
        """The Adam update of (a block of) the flat buffers, in place; tmp is scratch space."""
        xp = get_array_module(param)
        beta1, beta2 = self.betas
        dt = param.dtype.type
        xp.subtract(g, m, out=tmp)                     # m = beta1 * m + (1 - beta1) * g
        tmp *= dt(1 - beta1)
        m += tmp
        xp.multiply(g, g, out=tmp)                     # v = beta2 * v + (1 - beta2) * g * g
        tmp -= v
        tmp *= dt(1 - beta2)
        v += tmp
        # m_hat / (sqrt(v_hat) + eps) = step_size * m / (sqrt(v) + eps_hat): corrections folded in
        correction2 = math.sqrt(1 - beta2 ** self.t)
        step_size = self.lr * correction2 / (1 - beta1 ** self.t)
        xp.sqrt(v, out=tmp)
        tmp += dt(self.eps * correction2)
        xp.divide(m, tmp, out=tmp)
        tmp *= dt(step_size)
        if self.weight_decay and self.decoupled:       # AdamW: param *= 1 - lr * weight_decay
            param *= dt(1 - self.lr * self.weight_decay)
        param -= tmp

    def state_dict(self):
        """Hyper-parameters, step count and moments as NumPy arrays: plain Adam's format."""
        return {"t": self.t, "lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay, "m": to_numpy(self.m).copy(),
                "v": to_numpy(self.v).copy()}

    def load_state_dict(self, state):
        """Restore what `state_dict` (this class's or plain Adam's) returned."""
        for key in ("m", "v"):
            if np.shape(state[key]) != self.m.shape:
                raise ValueError(f"optimizer state holds {np.size(state[key])} numbers, "
                                 f"the model has {self.m.shape[0]}")
        self.t, self.lr = int(state["t"]), float(state["lr"])
        self.betas, self.eps = tuple(state["betas"]), float(state["eps"])
        self.weight_decay = float(state["weight_decay"])
        device = "cpu" if get_array_module(self.m) is np else "cuda"
        self.m[...] = to_device(np.asarray(state["m"], dtype=self.m.dtype), device)
        self.v[...] = to_device(np.asarray(state["v"], dtype=self.v.dtype), device)


class FlatAdamW(FlatAdam):
    """AdamW (tinynmt/optim/adam.py:AdamW) over flat buffers: param *= 1 - lr * wd."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


def flat_clip_grad_norm_(parameters, max_norm):
    """clip_grad_norm_ with one norm and one scaling on FlatAdam's flat_grad, when the gradients
    are together exactly that buffer (after FlatAdam's zero_grad); else the plain one.

    Plain: tinynmt/optim/clip.py:clip_grad_norm_, a dot product and a scaling per parameter;
    the same norm up to float rounding (the sum is taken in another order).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = shared_buffer(grads) if grads else None
    if flat is None:
        from ..optim.clip import clip_grad_norm_   # here: tinynmt.optim imports this module
        return clip_grad_norm_(parameters, max_norm)
    xp = get_array_module(flat)
    norm = xp.sqrt(xp.vdot(flat, flat))
    flat *= xp.minimum(max_norm / (norm + 1e-6), 1).astype(flat.dtype)
    return norm


def shared_buffer(grads):
    """The 1-D buffer that `grads` are all views of, when their sizes add up to its size.

    That is FlatAdam's flat_grad seen through its grad_views (one per parameter, side by side).
    A .grad replaced by another array, or a subset of the parameters, gives None. (Views that
    overlapped each other and still added up to the buffer's size would fool this; nothing in
    tinynmt makes them.)
    """
    base = grads[0].base
    if base is None or base.ndim != 1 or any(g.base is not base for g in grads):
        return None
    if len({id(g) for g in grads}) != len(grads) or sum(g.size for g in grads) != base.size:
        return None
    return base
