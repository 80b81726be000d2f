"""Reverse-mode automatic differentiation on NumPy/CuPy arrays."""
from .function import Function, is_grad_enabled, no_grad, unbroadcast
from .functional import (concatenate, cross_entropy, dropout, embedding, layer_norm, linear, log_softmax, relu, softmax, stack, where)
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, tensor

__all__ = ["Function", "GradcheckError", "Tensor", "concatenate", "cross_entropy", "dropout",
           "embedding", "gradcheck", "is_grad_enabled", "layer_norm", "linear", "log_softmax", "no_grad",
           "relu", "softmax", "stack", "tensor", "unbroadcast", "where"]
