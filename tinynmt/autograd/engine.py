"""Reverse-mode differentiation: walk the graph backwards from one output.

The graph's nodes are Functions (each remembers its parents: the Functions that made its
inputs, or the leaf Tensors among them) and leaf Tensors, which collect `.grad`.
"""
from .. import fast
from .function import Function


def topological_order(root):
    """Graph nodes that need a gradient, each after all the nodes it was computed from.

    Iterative depth-first search, so a 10,000-op chain needs no recursion.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if isinstance(node, Function) and not node.released:
            stack.extend((p, False) for p in node.parents if p is not None and id(p) not in visited)
    return order


def check_grad(fn, shape, grad):
    """A gradient must have its tensor's shape; name the op that broke the rule."""
    if grad.shape != shape:
        raise RuntimeError(f"{fn.name}.backward returned a gradient of shape {grad.shape} "
                           f"for an input of shape {shape}")


FREED = ("backward through a graph that was already freed: a graph can be walked once; "
         "recompute the forward pass to go backward again")


def run_backward(root, grad):
    """Send `grad` from `root` to every leaf that requires a gradient; free the graph."""
    start = root.grad_fn or root             # a Function, or a leaf (or a result already freed)
    # keyed by id(): Tensor overloads == for elementwise comparison
    grads = {id(start): grad}   # node -> gradient summed over the paths seen so far
    in_place = fast.InPlaceSums() if fast.enabled() else None   # adds into the sums it made
    for node in reversed(topological_order(start)):
        key = id(node)
        g = grads.pop(key, None)
        if not isinstance(node, Function):
            if not node.is_leaf:
                raise RuntimeError(FREED)
            if g is not None and node.requires_grad:    # a leaf: accumulate into .grad
                if node.grad is not None:
                    node.grad += g
                elif in_place:
                    node.grad = in_place.leaf_grad(key, g)
                else:
                    node.grad = g.copy()    # g may be another node's gradient too
            continue
        if node.released:
            raise RuntimeError(FREED)
        if g is not None:
            input_grads = node.backward(g)
            for parent, shape, input_grad in zip(node.parents, node.input_shapes, input_grads):
                if input_grad is None or parent is None:
                    continue
                check_grad(node, shape, input_grad)
                parent_key = id(parent)
                if parent_key not in grads:
                    grads[parent_key] = input_grad
                elif in_place:
                    in_place.add(grads, parent_key, input_grad)
                else:
                    grads[parent_key] = grads[parent_key] + input_grad
        out = node.output()                  # the result Tensor, if anything still holds it
        if out is not None:
            out.grad_fn = None
        node.release()
