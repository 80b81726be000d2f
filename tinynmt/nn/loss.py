"""Losses: cross-entropy and the tutorial's teacher-forced loss (R-Drop's, a training option,
is tinynmt/training/rdrop.py).

Legend: B batch, S source length, T target length, V target vocabulary, N target positions.
"""
from .. import fast
from ..autograd import Tensor, cross_entropy
from ..backend import to_device


class CrossEntropyLoss:
    """Mean softmax cross-entropy over targets that are not `ignore_index` (PyTorch's signature).

    One fused, numerically stable Function (log-softmax inside); an all-ignored batch gives 0.
    """

    def __init__(self, ignore_index=-100, label_smoothing=0.0):
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def __call__(self, logits, target):
        """logits (N, V), target (N,) integer class ids -> scalar loss."""
        target = target.data if isinstance(target, Tensor) else target
        if logits.ndim != 2 or target.shape != logits.shape[:1]:
            raise ValueError(f"CrossEntropyLoss: expected logits (N, V) and target (N,), got "
                             f"{logits.shape} and {target.shape}")
        return cross_entropy(logits, to_device(target, logits.device),
                             ignore_index=self.ignore_index, label_smoothing=self.label_smoothing)


def teacher_forced_logits(model, src, trg):
    """The model reads trg[:, :-1] -> its logits (B * (T-1), V) and their targets trg[:, 1:] (B * (T-1),)."""
    output, _ = model(src, trg[:, :-1])                                        # (B, T-1, V)
    return output.reshape(-1, output.shape[-1]), trg[:, 1:].reshape(-1)


def teacher_forced_loss(model, criterion, src, trg):
    """The tutorial's loss: the model reads trg[:, :-1] and is scored on predicting trg[:, 1:]."""
    pad = getattr(model, "trg_pad_idx", None)
    if fast.enabled() and pad is not None and getattr(criterion, "ignore_index", None) == pad:
        return criterion(*fast.scored_logits(model, src, trg, pad))   # no logits for padding
    return criterion(*teacher_forced_logits(model, src, trg))

