"""Training does not accumulate memory: every step's graph is freed by backward."""
import gc

import numpy as np

from tinynmt.autograd import Function, Tensor
from tinynmt.nn import CrossEntropyLoss, ModelConfig, build_transformer
from tinynmt.optim import Adam, clip_grad_norm_

PAD = 1


def live(kind):
    """How many objects of a class the garbage collector can see."""
    gc.collect()
    return sum(issubclass(type(o), kind) for o in gc.get_objects())


def test_the_graph_is_freed_after_every_step():
    model = build_transformer(20, 20, PAD, PAD, ModelConfig(hid_dim=16, enc_layers=1, dec_layers=1, enc_heads=2,
                              dec_heads=2, enc_pf_dim=32, dec_pf_dim=32, max_length=12), seed=0)
    optimizer = Adam(model.parameters(), lr=1e-3)
    criterion = CrossEntropyLoss(ignore_index=PAD)
    rng = np.random.default_rng(0)
    counts, kept = [], []
    for step in range(12):
        src, trg = rng.integers(4, 20, (8, 9)), rng.integers(4, 20, (8, 10))
        logits, _ = model(src, trg[:, :-1])
        loss = criterion(logits.reshape(-1, 20), trg[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        kept.append(loss)   # a user keeping losses for logging must not keep their graphs
        if step in (2, 11):
            counts.append((live(Function), live(Tensor)))
    assert counts[0][0] == 0, "Functions outlive backward"
    functions, tensors = counts[1][0], counts[1][1] - counts[0][1]
    assert functions == 0, "Functions outlive backward"
    assert tensors == 9, f"9 more kept losses should be 9 more tensors, got {tensors}"
