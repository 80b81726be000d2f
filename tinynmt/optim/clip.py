"""Gradient clipping by the global norm, as torch.nn.utils.clip_grad_norm_."""
from ..backend import get_array_module


def clip_grad_norm_(parameters, max_norm):
    """Scale all gradients together so their global L2 norm is at most max_norm; return the norm.

    norm = sqrt(sum over every .grad of sum(grad * grad)); every .grad *= min(1, max_norm /
    (norm + 1e-6)). The norm stays an array (a 0-d one) so a GPU step needs no host sync.
    Parameters without a .grad are skipped. (The trainer's faster version, over FlatAdam's one
    gradient buffer: tinynmt/fast/flat_adam.py:flat_clip_grad_norm_.)
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    xp = get_array_module(grads[0])
    norm = xp.sqrt(sum(xp.vdot(g.ravel(), g.ravel()) for g in grads))   # vdot: sum(g * g)
    scale = xp.minimum(max_norm / (norm + 1e-6), 1).astype(grads[0].dtype)
    for g in grads:
        g *= scale
    return norm
