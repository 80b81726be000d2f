"""Speed corner: the trainer's loss computes no logits for padded target positions.

Plain (nn/loss.py teacher_forced_loss, beside the call): `teacher_forced_logits`, logits for
all B * (T-1) positions, of which the criterion then ignores those whose target is padding.
The output layer and the softmax over V words are a large part of a small model's step (half
its multiply-adds in the tiny recipe), and about a tenth of a batch's targets are padding (11%
in the tutorial's batches of 64, 9% in the tiny recipe's), so those rows are left out before
the output layer. The same loss and gradients to float rounding: an ignored row adds nothing
to either. Needs a criterion that ignores exactly the padding id (nn/loss.py checks).
Legend: B batch, T target length, V target vocabulary, M non-pad positions.
"""


def scored_logits(model, src, trg, pad):
    """teacher_forced_logits without the positions whose target is `pad` -> logits (M, V) and
    their targets (M,), for src (B, S), trg (B, T) ids (on the host or the model's device)."""
    target = trg[:, 1:].reshape(-1)                                  # (B * (T-1),)
    rows = (target != pad).nonzero()[0]                              # (M,), row-major positions
    logits, _ = model(src, trg[:, :-1], rows=rows)                   # (M, V)
    return logits, target[rows]
