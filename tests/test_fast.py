"""The speed corner's switch: TINYNMT_PLAIN, use_fast and plain; every op, and the whole model,
give the same numbers with the tricks on and off."""
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from tinynmt import Tensor, fast
from tinynmt.autograd import cross_entropy, dropout, embedding, gradcheck, layer_norm, linear
from tinynmt.backend import to_numpy
from tinynmt.fast.cross_entropy import CE_BLOCK_ROWS

ROOT = Path(__file__).resolve().parents[1]


# ----- the switch

@pytest.mark.parametrize("value, expected", [(None, True), ("", True), ("0", True), ("1", False)])
def test_tinynmt_plain_in_the_environment_sets_the_switch_at_import(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "TINYNMT_PLAIN"}
    if value is not None:
        env["TINYNMT_PLAIN"] = value
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", "from tinynmt import fast; print(fast.enabled())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(expected)


def test_use_fast_sets_the_switch_and_restores_it_after_a_block():
    start = fast.enabled()
    try:
        fast.use_fast(True)
        with fast.plain():
            assert fast.enabled() is False
            with fast.use_fast(True):
                assert fast.enabled() is True
            assert fast.enabled() is False
        assert fast.enabled() is True
        fast.use_fast(False)
        assert fast.enabled() is False
    finally:
        fast.use_fast(start)


def on_both_paths(run):
    """run() with the tricks on, then off -> (fast result, plain result)."""
    with fast.use_fast(True):
        fast_result = run()
    with fast.plain():
        plain_result = run()
    return fast_result, plain_result


def value_and_grads(op, arrays, xp, dtype=np.float32):
    """op(*tensors).sum() and every input's gradient, as NumPy arrays."""
    def run():
        tensors = [Tensor(xp.asarray(a.astype(dtype)), requires_grad=True) for a in arrays]
        out = op(*tensors)
        (out * Tensor(xp.asarray(np.linspace(0.5, 1.5, out.size).reshape(out.shape).astype(dtype)))).sum().backward()
        return [to_numpy(out.data)] + [to_numpy(t.grad) for t in tensors]
    return run


def assert_same(fast_result, plain_result, rtol=1e-5, atol=1e-6):
    for a, b in zip(fast_result, plain_result, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ----- each op on both paths

@pytest.mark.parametrize("n_rows", [3, CE_BLOCK_ROWS, 2 * CE_BLOCK_ROWS + 5])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("ignored", ["none", "some", "all"])
def test_cross_entropy(xp, rng, n_rows, label_smoothing, ignored):
    logits = rng.standard_normal((n_rows, 50)) * 4
    target = rng.integers(0, 50, n_rows)
    target[{"none": slice(0), "some": slice(None, None, 3), "all": slice(None)}[ignored]] = 1
    t = xp.asarray(target)
    op = lambda z: cross_entropy(z, t, ignore_index=1, label_smoothing=label_smoothing)   # noqa: E731
    assert_same(*on_both_paths(value_and_grads(op, [logits], xp)))
    for path in (True, False):           # and a float64 gradcheck over several row blocks
        with fast.use_fast(path):
            assert gradcheck(op, [Tensor(xp.asarray(logits), requires_grad=True)], max_full=0)


@pytest.mark.parametrize("shape", [(7,), (3, 7), (2, 3, 7), (64, 13, 32)])
def test_layer_norm(xp, rng, shape):
    x = rng.standard_normal(shape) * 3 + 1
    gamma, beta = rng.standard_normal(shape[-1:]), rng.standard_normal(shape[-1:])
    assert_same(*on_both_paths(value_and_grads(layer_norm, [x, gamma, beta], xp)))


def test_layer_norm_of_a_non_contiguous_input_without_scale_and_shift_gradients(xp, rng):
    a = rng.standard_normal((6, 4, 5)).astype(np.float32)
    gamma, beta = Tensor(xp.asarray(rng.standard_normal(5).astype(np.float32))), Tensor(xp.zeros(5, np.float32))
    op = lambda x: layer_norm(x.transpose(1, 0, 2), gamma, beta)   # noqa: E731
    assert_same(*on_both_paths(value_and_grads(op, [a], xp)))


@pytest.mark.parametrize("bias", [True, False])
def test_linear(xp, rng, bias):
    x, w, b = rng.standard_normal((4, 5, 6)), rng.standard_normal((3, 6)), rng.standard_normal(3)
    op = (lambda x, w, b: linear(x, w, b)) if bias else (lambda x, w: linear(x, w))
    assert_same(*on_both_paths(value_and_grads(op, [x, w, b] if bias else [x, w], xp)))


@pytest.mark.parametrize("a_shape, b_shape", [((2, 3, 4), (4, 5)), ((2, 2, 1, 3), (3, 2)), ((2, 3, 4), (2, 4, 5)),
                                              ((3, 4), (4, 2))])
def test_matmul(xp, rng, a_shape, b_shape):
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    assert_same(*on_both_paths(value_and_grads(lambda s, t: s @ t, [a, b], xp)))
    constant = Tensor(xp.asarray(b.astype(np.float32)))           # only a needs a gradient
    assert_same(*on_both_paths(value_and_grads(lambda s: s @ constant, [a], xp)))


class FixedMask:
    """A stand-in generator whose keep mask is given: both paths then drop the same elements."""

    def __init__(self, keep):
        self.keep = keep

    def keep_mask(self, shape, p):
        return self.keep


def test_dropout_with_the_same_mask_is_the_same_bit_for_bit(xp, rng):
    x = rng.standard_normal((4, 5, 6))
    generator = FixedMask(xp.asarray(rng.random((4, 5, 6)) >= 0.3))
    fast_result, plain_result = on_both_paths(value_and_grads(lambda t: dropout(t, 0.3, generator), [x], xp))
    for a, b in zip(fast_result, plain_result, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_graph_built_on_one_path_goes_backward_on_the_other(xp, rng):
    generator = FixedMask(xp.asarray(rng.random((3, 4)) >= 0.5))
    for forward_path in (True, False):
        x = Tensor(xp.asarray(rng.standard_normal((3, 4))), requires_grad=True)
        with fast.use_fast(forward_path):
            y = dropout(x * 2.0, 0.5, generator).sum()
        with fast.use_fast(not forward_path):
            y.backward()
        np.testing.assert_array_equal(to_numpy(x.grad), to_numpy(generator.keep) * 4.0)


def test_embedding_with_repeated_ids(xp, rng):
    ids = xp.asarray(rng.integers(0, 20, (16, 9)))                # repeats: 144 ids over 20 rows
    weight = rng.standard_normal((30, 8))
    assert_same(*on_both_paths(value_and_grads(lambda w: embedding(ids, w), [weight], xp)))


def test_engine_sums_of_a_reused_node(xp, rng):
    """x feeds four ops (as an attention input feeds q, k, v and the residual); a + b shares one
    gradient array between two leaves."""
    def op(x, a, b):
        return (x * a + x * b + (x * x).sum(axis=-1, keepdims=True) + x) * (a + b)
    arrays = [rng.standard_normal((5, 6)) for _ in range(3)]
    assert_same(*on_both_paths(value_and_grads(op, arrays, xp)))


def test_leaves_never_share_a_gradient_array(xp):
    for path in (True, False):
        with fast.use_fast(path):
            a, b = (Tensor(xp.ones(3), requires_grad=True) for _ in range(2))
            seed = xp.ones(3)
            (a + b).backward(seed)
            assert a.grad is not b.grad and a.grad is not seed
            a.grad += 1
            assert (to_numpy(b.grad) == 1).all() and (to_numpy(seed) == 1).all()


def test_python_scalar_operands(xp, rng):
    x = Tensor(xp.asarray(rng.standard_normal(4).astype(np.float32)))
    fast_result, plain_result = on_both_paths(lambda: [to_numpy((x * 0.1 + 2 - 1 / x).data)])
    assert_same(fast_result, plain_result, rtol=0, atol=0)
    with fast.use_fast(True):
        assert isinstance(x._pair(0.1).data, np.generic)          # a NumPy scalar, even for a GPU x
    with fast.plain():
        constant = x._pair(0.1).data
        assert constant.shape == () and type(constant) is type(x.data)   # a 0-d array on x's device


# ----- the whole model

def tiny_model():
    from tinynmt.nn import ModelConfig, build_transformer
    return build_transformer(20, 18, 1, 1, ModelConfig(hid_dim=16, enc_layers=2, dec_layers=2, enc_heads=2, dec_heads=2,
                                                       enc_pf_dim=32, dec_pf_dim=32, enc_dropout=0.0,
                                                       dec_dropout=0.0, max_length=12), seed=0)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_the_whole_model_gives_the_same_loss_and_gradients(rng, label_smoothing):
    from tinynmt.nn import CrossEntropyLoss, teacher_forced_loss
    src, trg = rng.integers(2, 20, (8, 9)), rng.integers(2, 18, (8, 7))
    src[0, 5:] = trg[1, 4:] = 1                                   # padding in both

    def run():
        model = tiny_model()
        loss = teacher_forced_loss(model, CrossEntropyLoss(ignore_index=1, label_smoothing=label_smoothing), src, trg)
        loss.backward()
        return [loss.numpy()] + [p.grad for _, p in sorted(model.named_parameters())]
    fast_result, plain_result = on_both_paths(run)
    assert len(fast_result) > 30 and all(np.abs(g).max() > 0 for g in fast_result[1:])
    assert_same(fast_result, plain_result, rtol=1e-4, atol=1e-6)


def test_the_loss_computes_no_logits_for_padding(rng):
    from tinynmt.nn import CrossEntropyLoss, teacher_forced_logits, teacher_forced_loss
    model = tiny_model()
    src, trg = rng.integers(2, 20, (8, 9)), rng.integers(2, 18, (8, 7))
    trg[1, 4:] = trg[5, 2:] = 1                                   # 3 + 5 padded targets
    logits, target = fast.scored_logits(model, src, trg, 1)
    all_logits, all_target = teacher_forced_logits(model, src, trg)
    keep = all_target != 1
    assert logits.shape == (8 * 6 - 8, 18) and keep.sum() == 8 * 6 - 8
    np.testing.assert_array_equal(target, all_target[keep])
    np.testing.assert_allclose(logits.numpy(), all_logits.numpy()[keep], rtol=1e-5, atol=1e-6)
    # a criterion that scores padding gets every position, whichever path runs
    scores_pad = CrossEntropyLoss(ignore_index=-100)
    expected = scores_pad(all_logits, all_target).numpy()
    for fast_on in (True, False):
        with fast.plain() if not fast_on else nullcontext():
            np.testing.assert_allclose(teacher_forced_loss(model, scores_pad, src, trg).numpy(), expected, rtol=1e-6)
            # a criterion of the user's own, a plain function, gets every position too
            mean_logit = teacher_forced_loss(model, lambda logits, target: logits.mean(), src, trg)
            np.testing.assert_allclose(mean_logit.numpy(), all_logits.numpy().mean(), rtol=1e-5)


def test_a_batch_of_padding_alone_gives_zero_loss_and_gradients(rng):
    from tinynmt.nn import CrossEntropyLoss, teacher_forced_loss
    model = tiny_model()
    src, trg = rng.integers(2, 20, (3, 5)), np.full((3, 4), 1)
    trg[:, 0] = 2                                                 # <sos>, then padding only
    loss = teacher_forced_loss(model, CrossEntropyLoss(ignore_index=1), src, trg)
    loss.backward()
    assert loss.numpy() == 0 and all(not np.any(p.grad) for p in model.parameters() if p.grad is not None)
