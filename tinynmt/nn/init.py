"""Weight initialisers. Each takes an explicit NumPy Generator, so a seed fixes the model."""
import math

import numpy as np

from ..backend import to_device
from ..options import check_choice


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


INITS = ("tutorial", "fairseq")   # the schemes initialize_weights knows


def initialize_weights(model, generator, scheme="tutorial"):
    """Initialise a Seq2Seq in place by `scheme` (one of INITS) and return it.

    tutorial: layers' defaults, then xavier_uniform_ on every weight with ndim > 1.
    fairseq: fairseq's Transformer (fairseq_init). Every draw comes from `generator`, so one
    seed fixes the whole model.
    """
    if check_choice("init", scheme, INITS) == "fairseq":
        return fairseq_init(model, generator)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters(generator)
        weight = module._parameters.get("weight")
        if weight is not None and weight.ndim > 1:
            xavier_uniform_(weight, generator)
    return model


def fairseq_init(model, generator):
    """fairseq's Transformer init, for its recipes: layers' defaults (PyTorch's, which the
    feed-forward layers keep), then
    - token and (learned) position embeddings N(0, 1/D), each token table's padding row 0;
    - attention: fc_q, fc_k, fc_v xavier_uniform_ with gain 1/sqrt(2), fc_o xavier_uniform_
      with its bias 0;
    - the decoder's output layer N(0, 1/D) with its bias 0 (fairseq's has none).
    With tie_embeddings the output layer then takes the decoder's token table.
    """
    from .attention import MultiHeadAttentionLayer            # attention imports layers, which import this
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters(generator)
    for side, pad in ((model.encoder, model.src_pad_idx), (model.decoder, model.trg_pad_idx)):
        std = side.tok_embedding.embedding_dim ** -0.5
        normal_(side.tok_embedding.weight, generator, std=std)
        side.tok_embedding.weight.data[pad] = 0
        if side.pos_embedding.parameters():                  # learned positions (sinusoids are fixed)
            normal_(side.pos_embedding.weight, generator, std=std)
    for module in model.modules():
        if isinstance(module, MultiHeadAttentionLayer):
            for fc in (module.fc_q, module.fc_k, module.fc_v):
                xavier_uniform_(fc.weight, generator, gain=1 / math.sqrt(2))
            xavier_uniform_(module.fc_o.weight, generator)
            zeros_(module.fc_o.bias)
    out = model.decoder.fc_out
    normal_(out.weight, generator, std=out.in_features ** -0.5)
    zeros_(out.bias)
    return model
