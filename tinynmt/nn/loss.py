"""Losses: cross-entropy, the tutorial's teacher-forced loss, and R-Drop's.

Legend: B batch, S source length, T target length, V target vocabulary, N target positions.
"""
from ..autograd import Tensor, cross_entropy, log_softmax
from ..backend import get_array_module, to_device


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
    return criterion(*teacher_forced_logits(model, src, trg))


def symmetric_kl(logits_1, logits_2, keep):
    """½(KL(p1‖p2) + KL(p2‖p1)) between the softmaxes of two (N, V) logits, per position,
    averaged over the positions where keep (N,) is True (0 when none is)."""
    log_p1, log_p2 = log_softmax(logits_1), log_softmax(logits_2)                  # (N, V)
    # KL(p1‖p2) + KL(p2‖p1) = sum_v p1 (log p1 - log p2) + p2 (log p2 - log p1)
    #                       = sum_v (p1 - p2) (log p1 - log p2)
    both = ((log_p1.exp() - log_p2.exp()) * (log_p1 - log_p2)).sum(axis=-1)       # (N,)
    keep = to_device(keep, logits_1.device).astype(logits_1.dtype)                 # (N,) 1 or 0
    count = get_array_module(keep).maximum(keep.sum(), 1)                          # no host sync
    return (both * keep).sum() * (0.5 / count)


def rdrop_loss(model, criterion, src, trg, alpha):
    """R-Drop (Liang et al., 2021): the batch twice in one forward pass, stacked B -> 2B, so the
    two copies meet different dropout masks; their mean cross-entropy (criterion's, label
    smoothing included) + alpha/2 * their symmetric_kl over the non-pad target positions.

    That is Liang et al.'s and fairseq's per-token loss, CE_1 + CE_2 + alpha * ½(KL(p1‖p2) +
    KL(p2‖p1)), halved: its cross-entropy part is plain training's mean, and alpha is theirs
    (fairseq's --rdrop-alpha). Without dropout both copies agree, the KL term is 0 and the loss
    is teacher_forced_loss."""
    xp = get_array_module(src)
    src, trg = xp.concatenate([src, src]), xp.concatenate([trg, trg])             # (2B, S), (2B, T)
    logits, target = teacher_forced_logits(model, src, trg)  # (2N, V), (2N,): copy 1's N positions, then copy 2's
    n = target.shape[0] // 2
    kl = symmetric_kl(logits[:n], logits[n:], target[:n] != criterion.ignore_index)
    return criterion(logits, target) + kl * (alpha / 2)
