"""Speed corner: the engine adds a node's second and later gradients in place.

Plain (autograd/engine.py run_backward, beside the calls): `grads[key] = grads[key] + g`, a
new array at every addition, and a leaf's first gradient copied into .grad. A gradient an
op returns may be shared (Add hands the same array to both inputs), so the first addition
must still make a new array; after that the sum is the engine's own and takes `+=`, and a
leaf may keep it as its .grad without a copy. In the tutorial's step the input of every
attention layer feeds its query, key and value projections and the residual: four (B, T, D)
gradients summed per layer. Measured: see benchmarks/bench_fast.py (the row "engine sums").
"""


class InPlaceSums:
    """The set of gradient sums the engine made itself, which later additions may write into."""

    def __init__(self):
        self.owned = set()      # keys (node ids) whose summed gradient array is ours

    def add(self, grads, key, grad):
        """grads[key] += grad, in place once grads[key] is a sum made here."""
        if key in self.owned:
            grads[key] += grad
        else:                   # the first array may be shared with another node: add out of place
            grads[key] = grads[key] + grad
            self.owned.add(key)

    def leaf_grad(self, key, grad):
        """What a leaf's .grad starts as: the sum itself if it is ours, else a copy."""
        return grad if key in self.owned else grad.copy()
