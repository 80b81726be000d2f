"""Weight initialisers. Each takes an explicit NumPy Generator, so a seed fixes the model."""
import math

import numpy as np

from ..backend import to_device


def _fill(param, values):
    """Replace a parameter's values on its own device, keeping its dtype."""
    param.data = to_device(values.astype(param.dtype), param.device)
    return param


def xavier_uniform_(param, generator, gain=1.0):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_out, fan_in = param.shape[0], int(np.prod(param.shape[1:]))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(param, generator.uniform(-bound, bound, param.shape))


def uniform_(param, generator, low, high):
    """U(low, high)."""
    return _fill(param, generator.uniform(low, high, param.shape))


def normal_(param, generator, mean=0.0, std=1.0):
    """N(mean, std^2)."""
    return _fill(param, generator.normal(mean, std, param.shape))


def zeros_(param):
    return _fill(param, np.zeros(param.shape))


def ones_(param):
    return _fill(param, np.ones(param.shape))


def initialize_weights(model, generator):
    """The tutorial's init: layers' defaults, then xavier_uniform_ on every weight with ndim > 1.

    Every draw comes from `generator`, so one seed fixes the whole model.
    """
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters(generator)
        weight = module._parameters.get("weight")
        if weight is not None and weight.ndim > 1:
            xavier_uniform_(weight, generator)
    return model
