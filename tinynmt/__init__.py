"""tinynmt: a from-scratch autograd engine and the Transformer of "Attention is All You Need"
for Multi30k German->English, on NumPy (CPU) or CuPy (GPU)."""
from .autograd import Tensor, no_grad, tensor

__version__ = "0.1.0"
__all__ = ["Tensor", "no_grad", "tensor", "__version__"]
