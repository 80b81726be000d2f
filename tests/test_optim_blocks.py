"""FlatAdam's CPU update in cache-sized blocks gives the numbers of one update over the whole buffer."""
import numpy as np
import pytest

from tinynmt.nn import Parameter
from tinynmt.fast.flat_adam import FlatAdam, FlatAdamW


def run(opt_class, block, steps=3, **kw):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(shape).astype(np.float32)) for shape in [(300, 7), (5,), (1001,)]]
    opt = opt_class(params, lr=1e-2, **kw)
    opt.CPU_BLOCK = block
    for step in range(steps):
        opt.zero_grad()
        for p in params:
            p.grad[...] = np.random.default_rng(step).standard_normal(p.shape).astype(np.float32)
        opt.step()
    return np.concatenate([p.data.ravel() for p in params]), opt


@pytest.mark.parametrize("opt_class, kw", [(FlatAdam, {}), (FlatAdam, {"weight_decay": 0.1}), (FlatAdamW, {})])
def test_blocked_update_equals_one_block(opt_class, kw):
    whole, _ = run(opt_class, 10**9, **kw)
    blocked, opt = run(opt_class, 64, **kw)   # 3106 numbers: 49 blocks, the last one partial
    assert opt.flat_param.size % 64
    np.testing.assert_array_equal(blocked, whole)
    assert not np.array_equal(whole, run(opt_class, 10**9, steps=2, **kw)[0])  # the steps did move
