"""The basic layers, with PyTorch's signatures and default initialisations.

Legend: ... any leading axes, D features, V vocabulary (num_embeddings).
"""
import math

import numpy as np

from ..autograd import Tensor, dropout, embedding, layer_norm, linear
from ..backend import Generator, device_of, to_device
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, generator=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=np.float32))
        self.bias = Parameter(np.empty(out_features, dtype=np.float32)) if bias else None
        self.reset_parameters(generator or np.random.default_rng())

    def reset_parameters(self, generator):
        """PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias."""
        bound = 1 / math.sqrt(self.in_features)
        init.uniform_(self.weight, generator, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, generator, -bound, bound)

    def forward(self, x):
        return linear(x, self.weight, self.bias)   # (..., in) -> (..., out)


def check_ids(ids, limit, what):
    """Token ids must lie in [0, limit): CuPy (and NumPy, for negatives) would wrap silently."""
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= limit):
        raise IndexError(f"{what}: ids must lie in [0, {limit}), got min {int(ids.min())} "
                         f"and max {int(ids.max())}")


class Embedding(Module):
    """A lookup table: ids (...) -> rows of weight (num_embeddings, embedding_dim)."""

    def __init__(self, num_embeddings, embedding_dim, generator=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=np.float32))
        self.reset_parameters(generator or np.random.default_rng())

    def reset_parameters(self, generator):
        """PyTorch's default: N(0, 1)."""
        init.normal_(self.weight, generator)

    def forward(self, ids):
        ids = ids.data if isinstance(ids, Tensor) else ids
        if isinstance(ids, np.ndarray):            # validated on the host, before any GPU copy
            check_ids(ids, self.num_embeddings, "Embedding")
        return embedding(to_device(ids, self.weight.device), self.weight)  # (..., D)


def sinusoid_table(num_positions, dim):
    """Vaswani et al.'s fixed position vectors (num_positions, D), float32: column 2i of row p
    holds sin(p / 10000^(2i/D)), column 2i+1 the cosine of the same angle."""
    pair = np.arange(dim) // 2 * 2                                          # 0, 0, 2, 2, 4, ...
    angle = np.arange(num_positions)[:, None] / 10000.0 ** (pair / dim)     # (P, D), float64
    return np.where(np.arange(dim) % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32)


class SinusoidalPositions(Module):
    """Embedding's interface over a fixed table: ids (...) -> rows of sinusoid_table (..., D).
    Nothing to train, so nothing in parameters() or state_dict()."""

    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.tables = {"cpu": sinusoid_table(num_embeddings, embedding_dim)}   # device -> (P, D)

    def forward(self, ids):
        ids = ids.data if isinstance(ids, Tensor) else ids
        if isinstance(ids, np.ndarray):
            check_ids(ids, self.num_embeddings, "SinusoidalPositions")
        device = device_of(ids)
        if device not in self.tables:                      # copied to a device once, on first use
            self.tables[device] = to_device(self.tables["cpu"], device)
        return Tensor(self.tables[device][ids])            # (..., D), a constant: no gradient


class LayerNorm(Module):
    """Normalise the last axis, then scale by weight and shift by bias."""

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        self.normalized_shape, self.eps = normalized_shape, eps
        self.weight = Parameter(np.ones(normalized_shape, dtype=np.float32))
        self.bias = Parameter(np.zeros(normalized_shape, dtype=np.float32))

    def reset_parameters(self, generator=None):
        init.ones_(self.weight)
        init.zeros_(self.bias)

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, eps=self.eps)


class Dropout(Module):
    """Zero elements with probability p while training; the identity in eval mode."""

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.generator = generator or Generator()

    def forward(self, x):
        return dropout(x, self.p, self.generator, training=self.training)


def set_dropout_generator(model, generator):
    """Make every Dropout in `model` draw its masks from one seeded generator."""
    for module in model.modules():
        if isinstance(module, Dropout):
            module.generator = generator
    return model

