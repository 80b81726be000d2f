"""R-Drop (--rdrop ALPHA, Liang et al. 2021): a training loss that plugs into train_step.

    loss_fn = partial(rdrop_loss, alpha=0.5)        # what Trainer picks for --rdrop 0.5
    train_step(model, criterion, optimizer, src, trg, clip, loss_fn=loss_fn)

It has train_step's loss signature, loss_fn(model, criterion, src, trg), like the tutorial's
nn.teacher_forced_loss, which it becomes when dropout is off.

Legend: B batch, S source length, T target length, V target vocabulary, N target positions.
"""
from ..autograd import log_softmax
from ..backend import get_array_module, to_device
from ..nn.loss import teacher_forced_logits


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
    is teacher_forced_loss. Both terms are per-token means, so a data-parallel rank's loss
    scaled by its share of the tokens still sums over the ranks to the global one."""
    xp = get_array_module(src)
    src, trg = xp.concatenate([src, src]), xp.concatenate([trg, trg])             # (2B, S), (2B, T)
    logits, target = teacher_forced_logits(model, src, trg)  # (2N, V), (2N,): copy 1's N positions, then copy 2's
    n = target.shape[0] // 2
    kl = symmetric_kl(logits[:n], logits[n:], target[:n] != criterion.ignore_index)
    return criterion(logits, target) + kl * (alpha / 2)
