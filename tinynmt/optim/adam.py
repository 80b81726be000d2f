"""Adam and AdamW, one parameter at a time, as their docstring writes them.

The trainer runs tinynmt/fast/flat_adam.py:FlatAdam, which does the same update on flat
buffers (tested equal to this one); both save the same state_dict, so checkpoints move
between them.
"""
import numpy as np

from ..backend import get_array_module, to_device, to_numpy


class Adam:
    """Adam (Kingma & Ba, 2015) with optional L2 weight decay.

    for each step t = 1, 2, ...:
        for each param (its gradient g = param.grad; none counts as zero):
            g = g + weight_decay * param               (L2; AdamW decays the param instead)
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
            m_hat = m / (1 - beta1 ** t)
            v_hat = v / (1 - beta2 ** t)
            param = param - lr * m_hat / (sqrt(v_hat) + eps)
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer was given no parameters")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.t = 0
        self.m = [get_array_module(p.data).zeros_like(p.data) for p in self.params]
        self.v = [get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def zero_grad(self):
        """Forget every gradient: the next backward starts each .grad afresh."""
        for param in self.params:
            param.grad = None

    def step(self):
        """One update of every parameter from its .grad, written into its array."""
        self.t += 1
        # Python floats: NumPy 2 would turn a float32 array times an np.float64 into float64
        beta1, beta2 = float(self.betas[0]), float(self.betas[1])
        lr, eps, weight_decay = float(self.lr), float(self.eps), float(self.weight_decay)
        for i, param in enumerate(self.params):
            xp = get_array_module(param.data)
            g = param.grad if param.grad is not None else xp.zeros_like(param.data)
            if weight_decay and not self.decoupled:
                g = g + weight_decay * param.data      # L2: a new array, .grad stays as it was
            self.m[i] = beta1 * self.m[i] + (1 - beta1) * g
            self.v[i] = beta2 * self.v[i] + (1 - beta2) * g * g
            m_hat = self.m[i] / (1 - beta1 ** self.t)
            v_hat = self.v[i] / (1 - beta2 ** self.t)
            if weight_decay and self.decoupled:
                param.data *= 1 - lr * weight_decay
            param.data -= lr * m_hat / (xp.sqrt(v_hat) + eps)

    def state_dict(self):
        """Hyper-parameters, step count, and m and v each as one flat NumPy vector, the
        parameters' moments one after another in `params` order (the checkpoint format)."""
        return {"t": self.t, "lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay, "m": flatten(self.m), "v": flatten(self.v)}

    def load_state_dict(self, state):
        """Restore what `state_dict` (this class's or FlatAdam's) returned."""
        check_state_size(state, sum(p.size for p in self.params))
        self.t, self.lr = int(state["t"]), float(state["lr"])
        self.betas, self.eps = tuple(state["betas"]), float(state["eps"])
        self.weight_decay = float(state["weight_decay"])
        self.m = unflatten(state["m"], self.params)
        self.v = unflatten(state["v"], self.params)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): param *= 1 - lr * wd."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)


def flatten(arrays):
    """One NumPy vector of every array's numbers, one array after another (a copy)."""
    return np.concatenate([to_numpy(a).ravel() for a in arrays])


def unflatten(flat, params):
    """`flatten`'s inverse: one array per parameter, with its shape, dtype and device (copies)."""
    stops = np.cumsum([p.size for p in params])
    pieces = np.split(np.asarray(flat), stops[:-1])
    return [to_device(piece.reshape(p.shape).astype(p.dtype), p.device)
            for piece, p in zip(pieces, params)]


def check_state_size(state, size):
    """ValueError unless the saved moments hold `size` numbers each (the same parameters)."""
    for key in ("m", "v"):
        if np.shape(state[key]) != (size,):
            raise ValueError(f"optimizer state holds {np.size(state[key])} numbers, "
                             f"the model has {size}")
