"""Checkpoint averaging: the mean of several checkpoints' weights of one run.

    average_checkpoints([path, ...], out)          # returns the Checkpoint written

The program is `python -m tinynmt.average` (programs/average.py).
The mean of the last few epochs' weights (Vaswani et al., 2017; fairseq's
average_checkpoints.py) usually translates better than any one of them: the epochs sit
around one minimum, and their average lies nearer its centre. The checkpoints must come
from the same model (same config and vocabularies); the average is a weights-only
checkpoint (not resumable) with the first one's config, vocabularies and tokenizer.
"""
import dataclasses
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def _model_fields(config):
    """The config without where the run lived and what a resume may change (--epochs, ...): what
    must agree between averaged checkpoints."""
    from .run_folder import RESUME_OVERRIDES
    return {k: v for k, v in config.to_dict().items() if k not in ("out", "resume", *RESUME_OVERRIDES)}


def average_checkpoints(paths, out):
    """Write the mean of the checkpoints' weights to `out` and return it loaded (eval mode)."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    base = load_checkpoint(paths[0])
    total = {name: array.astype(np.float64) for name, array in base.model.state_dict().items()}
    for path in paths[1:]:
        other = load_checkpoint(path)
        if (_model_fields(other.config) != _model_fields(base.config)
                or other.src_vocab != base.src_vocab or other.trg_vocab != base.trg_vocab):
            raise CheckpointError(f"{path}: another model, config or vocabulary than {paths[0]}")
        for name, array in other.model.state_dict().items():
            total[name] += array
    base.model.load_state_dict({name: (array / len(paths)).astype(np.float32)
                                for name, array in total.items()})
    train_state = {"averaged": [str(p) for p in paths]}
    save_checkpoint(out, base.model, base.config, base.src_vocab, base.trg_vocab, base.tokenizer,
                    train_state=train_state)
    return dataclasses.replace(base, optimizer_state=None, train_state=train_state, path=Path(out))


