"""Fused nn primitives: softmax, log_softmax, dropout, embedding, layer_norm, cross_entropy."""
import numpy as np
import pytest

from tinynmt import fast
from tinynmt.autograd import (Tensor, cross_entropy, dropout, embedding, gradcheck, layer_norm, log_softmax, softmax)
from tinynmt.backend import Generator, to_numpy


@pytest.fixture(autouse=True, params=["fast", "plain"])
def engine_path(request):
    """Every test here runs twice: with the speed corner's tricks (tinynmt/fast/) and without."""
    with fast.use_fast(request.param == "fast"):
        yield request.param


def np_log_softmax(a, axis):
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def device_name(xp):
    return "cpu" if xp is np else "cuda"


# ----- softmax and log_softmax

@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_forward_and_gradcheck(xp, rng, leaf, axis):
    a = rng.standard_normal((2, 3, 3))
    out = leaf(a).softmax(axis=axis)
    np.testing.assert_allclose(to_numpy(out.data), np.exp(np_log_softmax(a, axis)), rtol=1e-12)
    assert gradcheck(lambda t: softmax(t, axis=axis), [leaf(a)])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_log_softmax_forward_and_gradcheck(xp, rng, leaf, axis):
    a = rng.standard_normal((2, 3, 3))
    out = leaf(a).log_softmax(axis=axis)
    np.testing.assert_allclose(to_numpy(out.data), np_log_softmax(a, axis), rtol=1e-12)
    assert gradcheck(lambda t: log_softmax(t, axis=axis), [leaf(a)])


@pytest.mark.parametrize("op", [softmax, log_softmax])
def test_softmax_gradcheck_random_directions(xp, rng, leaf, op):
    assert gradcheck(op, [leaf(rng.standard_normal((4, 8, 32)))])


def test_softmax_is_stable_for_large_logits(xp, leaf):
    a = np.array([[1000.0, 0.0, -1000.0], [-1e10, -1e10, 5.0]])     # a masked row, as in attention
    probs = to_numpy(leaf(a, dtype=np.float32).softmax().data)
    logp = to_numpy(leaf(a, dtype=np.float32).log_softmax().data)
    assert np.isfinite(probs).all() and np.isfinite(logp[:, :2]).all()
    np.testing.assert_allclose(probs, [[1, 0, 0], [0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(logp[0], [0, -1000, -2000], rtol=1e-6)


# ----- dropout

def test_dropout_gradcheck_with_a_fixed_mask(xp, rng, leaf):
    # a fresh generator with the same seed on every call: the same mask each time
    op = lambda t: dropout(t, 0.4, Generator(3, device=device_name(xp)))
    assert gradcheck(op, [leaf(rng.standard_normal((3, 4)))])
    assert gradcheck(op, [leaf(rng.standard_normal((20, 30)))])


def test_dropout_gradient_is_the_scaled_mask(xp, rng, leaf):
    p = 0.25
    x = leaf(rng.uniform(0.5, 1.5, (40, 50)), dtype=np.float32)
    g = rng.standard_normal((40, 50)).astype(np.float32)
    out = dropout(x, p, Generator(11, device=device_name(xp)))
    out.backward(xp.asarray(g))
    kept = to_numpy(out.data) != 0
    assert 0 < kept.mean() < 1
    scale = np.float32(1 / (1 - p))
    np.testing.assert_array_equal(to_numpy(out.data), np.where(kept, to_numpy(x.data) * scale, 0))
    np.testing.assert_array_equal(to_numpy(x.grad), np.where(kept, g * scale, 0))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_keeps_1_minus_p_and_preserves_the_mean(xp, p):
    x = Tensor(xp.ones((200, 500), dtype=np.float32))
    out = to_numpy(dropout(x, p, Generator(0, device=device_name(xp))).data)
    keep = (out != 0).mean()
    assert abs(keep - (1 - p)) < 0.01                 # binomial std here is < 0.0023
    assert abs(out.mean() - 1.0) < 0.02
    assert out.dtype == np.float32


def test_dropout_masks_follow_the_generator(xp):
    x = Tensor(xp.ones((50, 40), dtype=np.float32))
    gen = Generator(21, device=device_name(xp))
    first, second = dropout(x, 0.5, gen).data, dropout(x, 0.5, gen).data
    again = dropout(x, 0.5, Generator(21, device=device_name(xp))).data
    assert not np.array_equal(to_numpy(first), to_numpy(second))     # the generator moved on
    np.testing.assert_array_equal(to_numpy(again), to_numpy(first))  # same seed, same mask


@pytest.mark.parametrize("p, training", [(0.0, True), (0.5, False)])
def test_dropout_identity_when_p_is_0_or_not_training(xp, rng, leaf, p, training):
    a = rng.standard_normal((3, 4))
    x = leaf(a)
    out = dropout(x, p, Generator(0, device=device_name(xp)), training=training)
    np.testing.assert_array_equal(to_numpy(out.data), a)
    (out * 2).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), np.full((3, 4), 2.0))


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_dropout_rejects_a_bad_probability(p):
    with pytest.raises(ValueError, match="dropout probability"):
        dropout(Tensor(np.ones(3)), p, Generator(0))


# ----- embedding

def test_embedding_gathers_rows(xp, rng, leaf):
    w = rng.standard_normal((6, 3))
    ids = np.array([[1, 4, 1], [0, 5, 1]])                  # (B, T), id 1 three times
    out = embedding(xp.asarray(ids), leaf(w))
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(to_numpy(out.data), w[ids])


def test_embedding_backward_scatter_adds_repeated_ids(xp, rng, leaf):
    ids = np.array([[1, 4, 1, 1], [0, 4, 2, 2]])
    g = rng.standard_normal((2, 4, 3))
    w = leaf(rng.standard_normal((6, 3)))
    embedding(xp.asarray(ids), w).backward(xp.asarray(g))
    expected = np.zeros((6, 3))
    np.add.at(expected, ids.ravel(), g.reshape(-1, 3))
    np.testing.assert_allclose(to_numpy(w.grad), expected, rtol=1e-12)
    assert not to_numpy(w.grad)[[3, 5]].any()               # unused rows get nothing


def test_embedding_gradcheck(xp, rng, leaf):
    ids = xp.asarray(np.array([[2, 0, 2], [1, 2, 3]]))
    assert gradcheck(lambda w: embedding(ids, w), [leaf(rng.standard_normal((4, 2)))])
    big_ids = xp.asarray(rng.integers(0, 30, size=(8, 20)))
    assert gradcheck(lambda w: embedding(big_ids, w), [leaf(rng.standard_normal((30, 16)))])


def test_embedding_takes_a_list_or_an_id_tensor(xp, rng, leaf):
    w = rng.standard_normal((5, 2))
    np.testing.assert_array_equal(to_numpy(embedding([[4, 0]], leaf(w)).data), w[[[4, 0]]])
    ids = Tensor(xp.asarray(np.array([3, 3])))
    np.testing.assert_array_equal(to_numpy(embedding(ids, leaf(w)).data), w[[3, 3]])


# ----- layer norm

def np_layer_norm(a, gamma, beta, eps):
    mean = a.mean(axis=-1, keepdims=True)
    var = ((a - mean) ** 2).mean(axis=-1, keepdims=True)
    return (a - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_layer_norm_forward_and_gradcheck(xp, rng, leaf, eps):
    a, gamma, beta = rng.standard_normal((2, 3, 4)), rng.standard_normal(4), rng.standard_normal(4)
    out = layer_norm(leaf(a), leaf(gamma), leaf(beta), eps=eps)
    np.testing.assert_allclose(to_numpy(out.data), np_layer_norm(a, gamma, beta, eps), rtol=1e-10,
                               atol=1e-12)
    assert gradcheck(lambda x, g, b: layer_norm(x, g, b, eps=eps),
                     [leaf(a), leaf(gamma), leaf(beta)])


def test_layer_norm_gradcheck_random_directions(xp, rng, leaf):
    a = rng.standard_normal((4, 10, 32)) * 3 + 1
    gamma, beta = rng.standard_normal(32), rng.standard_normal(32)
    assert gradcheck(layer_norm, [leaf(a), leaf(gamma), leaf(beta)])


def test_layer_norm_without_gradients_for_scale_and_shift(xp, rng, leaf):
    a = rng.standard_normal((3, 5))
    gamma, beta = leaf(np.ones(5), requires_grad=False), leaf(np.zeros(5), requires_grad=False)
    assert gradcheck(lambda x: layer_norm(x, gamma, beta), [leaf(a)])
    assert gamma.grad is None and beta.grad is None


# ----- cross entropy

def np_cross_entropy(logits, target, ignore_index, label_smoothing):
    """PyTorch's mean reduction: average over the targets that are not ignored."""
    logp = np_log_softmax(logits, axis=1)
    valid = target != ignore_index
    picked = logp[np.arange(len(target)), np.where(valid, target, 0)]
    per_row = -(1 - label_smoothing) * picked - label_smoothing * logp.mean(axis=1)
    return per_row[valid].sum() / max(valid.sum(), 1)


CE_TARGETS = {
    "plain": (np.array([0, 3, 4, 1]), -100),
    "ignore_default": (np.array([0, -100, 4, -100]), -100),
    "ignore_pad_1": (np.array([1, 3, 1, 2]), 1),            # the tutorial ignores <pad> = 1
}


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("case", CE_TARGETS)
def test_cross_entropy_forward_and_gradcheck(xp, rng, leaf, case, label_smoothing):
    target, ignore_index = CE_TARGETS[case]
    logits = rng.standard_normal((4, 5)) * 2
    t = xp.asarray(target)
    op = lambda z: cross_entropy(z, t, ignore_index=ignore_index, label_smoothing=label_smoothing)
    loss = op(leaf(logits))
    assert loss.shape == ()
    np.testing.assert_allclose(loss.item(),
                               np_cross_entropy(logits, target, ignore_index, label_smoothing),
                               rtol=1e-12)
    assert gradcheck(op, [leaf(logits)])


def test_cross_entropy_ignored_rows_get_zero_gradient(xp, rng, leaf):
    target = np.array([2, 0, 0, 3, 0])
    z = leaf(rng.standard_normal((5, 4)))
    cross_entropy(z, xp.asarray(target), ignore_index=0, label_smoothing=0.1).backward()
    grad = to_numpy(z.grad)
    assert not grad[target == 0].any()
    assert np.abs(grad[target != 0]).min() > 0
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-12)   # softmax - distribution


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_all_ignored_gives_zero_loss_and_zero_grad(xp, rng, leaf, label_smoothing):
    z = leaf(rng.standard_normal((3, 4)), dtype=np.float32)
    loss = cross_entropy(z, xp.asarray(np.array([1, 1, 1])), ignore_index=1,
                         label_smoothing=label_smoothing)
    loss.backward()
    assert loss.item() == 0.0
    grad = to_numpy(z.grad)
    assert np.isfinite(grad).all() and not grad.any()


def test_cross_entropy_gradcheck_random_directions(xp, rng, leaf):
    target = rng.integers(0, 40, size=64)
    target[::5] = -100
    t = xp.asarray(target)
    op = lambda z: cross_entropy(z, t, label_smoothing=0.1)
    assert gradcheck(op, [leaf(rng.standard_normal((64, 40)))], max_full=0)


def test_cross_entropy_takes_a_list_of_targets(rng):
    logits = rng.standard_normal((3, 4))
    loss = cross_entropy(Tensor(logits), [3, 0, 2])
    np.testing.assert_allclose(loss.item(), np_cross_entropy(logits, np.array([3, 0, 2]), -100, 0),
                               rtol=1e-12)
