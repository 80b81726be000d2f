"""Reverse-mode differentiation: walk the graph backwards from one output."""
from .. import fast


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
        if node.grad_fn is not None:
            stack.extend((t, False) for t in node.grad_fn.inputs
                         if t.requires_grad and id(t) not in visited)
    return order


def check_grad(fn, tensor, grad):
    """A gradient must have its tensor's shape; name the op that broke the rule."""
    if grad.shape != tensor.shape:
        raise RuntimeError(f"{fn.name}.backward returned a gradient of shape {grad.shape} "
                           f"for an input of shape {tensor.shape}")


def run_backward(root, grad):
    """Send `grad` from `root` to every leaf that requires a gradient; free the graph."""
    # keyed by id(): Tensor overloads == for elementwise comparison
    grads = {id(root): grad}    # node -> gradient summed over the paths seen so far
    in_place = fast.InPlaceSums() if fast.enabled() else None   # adds into the sums it made
    for node in reversed(topological_order(root)):
        key = id(node)
        g = grads.pop(key, None)
        fn = node.grad_fn
        if fn is None and not node.is_leaf:
            raise RuntimeError("backward through a graph that was already freed: a graph can be "
                               "walked once; recompute the forward pass to go backward again")
        if fn is None:          # a leaf: accumulate into .grad
            if g is not None and node.requires_grad:
                if node.grad is not None:
                    node.grad += g
                elif in_place:
                    node.grad = in_place.leaf_grad(key, g)
                else:
                    node.grad = g.copy()    # g may be another node's gradient too
            continue
        if g is not None:
            input_grads = fn.backward(g)
            for tensor, input_grad in zip(fn.inputs, input_grads):
                if input_grad is None or not tensor.requires_grad:
                    continue
                check_grad(fn, tensor, input_grad)
                input_key = id(tensor)
                if input_key not in grads:
                    grads[input_key] = input_grad
                elif in_place:
                    in_place.add(grads, input_key, input_grad)
                else:
                    grads[input_key] = grads[input_key] + input_grad
        fn.release()
        node.grad_fn = None
