"""One training step, the tutorial's: forward, loss, backward, clip, update.

    loss, norm = train_step(model, criterion, optimizer, src, trg, clip=1.0)

What a run adds to it plugs in from outside, so the step itself stays the tutorial's lines:
`loss_fn` is the loss of the batch (the tutorial's teacher-forced cross-entropy, or R-Drop's:
tinynmt/training/rdrop.py), `after_backward` runs between backward and clipping (under data
parallelism the all-reduce that sums the ranks' gradients: tinynmt/training/distributed.py),
and `clip_grad_norm` is the clipping that suits the optimizer (the plain one by default). The
Trainer picks them once, when it is built.

Legend: B batch, S source length, T target length.
"""
from ..nn.loss import teacher_forced_loss
from ..optim import clip_grad_norm_


def keep_gradients(optimizer):
    """The after_backward of one process: the gradients stay as backward left them."""


def train_step(model, criterion, optimizer, src, trg, clip, loss_fn=teacher_forced_loss,
               after_backward=keep_gradients, clip_grad_norm=clip_grad_norm_):
    """The tutorial's step on one batch, src (B, S) and trg (B, T) -> (loss, gradient norm),
    both still device arrays (reading them back would wait for a GPU).

    loss_fn(model, criterion, src, trg) -> the scalar loss Tensor; after_backward(optimizer)
    sees the gradients before they are clipped; clip_grad_norm(params, clip) -> the norm.
    """
    optimizer.zero_grad()
    loss = loss_fn(model, criterion, src, trg)
    loss.backward()
    after_backward(optimizer)
    norm = clip_grad_norm(optimizer.params, clip)
    optimizer.step()
    return loss.data, norm
