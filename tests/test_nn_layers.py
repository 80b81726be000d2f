"""The layers: forward against plain NumPy formulas, then a float64 central-difference
gradcheck of every input and every parameter, with dropout off or its mask held fixed.

Legend: B batch, L length, S source length, T target length, D hidden, H heads, V vocabulary.
"""
import numpy as np
import pytest

from tinynmt.autograd import GradcheckError, Tensor, gradcheck
from tinynmt.backend import to_numpy
from tinynmt.nn import (CrossEntropyLoss, Decoder, DecoderLayer, Dropout, Embedding, Encoder, EncoderLayer, LayerNorm, Linear, MultiHeadAttentionLayer, PositionwiseFeedforwardLayer, set_dropout_generator)

D, H, P, V = 16, 2, 32, 12   # hidden, heads, feed-forward width, vocabulary: tiny on purpose


def device(xp):
    return "cpu" if xp is np else "cuda"


def to_float64(module):
    """Cast every parameter to float64 (the way gradcheck wants a model)."""
    for param in module.parameters():
        param.data = param.data.astype(np.float64)
    return module


def on(module, xp):
    """The module on xp's device, in float64, its weights drawn from a fixed seed: with
    unseeded weights a ReLU input now and then lands next to the kink, where central
    differences disagree with the gradient (seen once in ~35 runs of the encoder layer)."""
    rng = np.random.default_rng(1234)
    for m in module.modules():
        if isinstance(m, (Linear, Embedding)):
            m.reset_parameters(rng)
    return to_float64(module.to(device(xp)))


def gradcheck_each(fn, named_inputs, **options):
    """gradcheck `fn()` against each named tensor in turn, the others held fixed.

    The tensors are the model's own parameters (or its float inputs), so gradcheck's
    perturbations of `.data` reach the forward pass; the failure names the tensor.
    """
    assert named_inputs, "nothing to check"
    for name, t in named_inputs:
        assert t.dtype == np.float64, f"{name} is {t.dtype}, not float64"
        try:
            gradcheck(lambda *_: fn(), [t], **options)
        except GradcheckError as exc:
            raise GradcheckError(f"{name}: {exc}") from None


def random_input(xp, rng, *shape, requires_grad=True):
    return Tensor(xp.asarray(rng.standard_normal(shape)), requires_grad=requires_grad)


class FixedUniforms:
    """A stand-in dropout generator: the same uniforms for every call with the same shape,
    so a dropout mask stays fixed while gradcheck perturbs the inputs."""

    def __init__(self, xp):
        self.xp = xp

    def random(self, shape, dtype=np.float32):
        return self.xp.asarray(np.random.default_rng(list(shape)).random(shape).astype(dtype))

    def keep_mask(self, shape, p):
        return self.random(shape, np.float64) >= p

    def to(self, device):
        return self


def padding_mask(xp, lengths, length):
    """(B, 1, 1, L): True at the first lengths[b] positions of row b."""
    mask = np.arange(length)[None, :] < np.asarray(lengths)[:, None]    # (B, L)
    return xp.asarray(mask[:, None, None, :])


def causal_mask(xp, lengths, length):
    """(B, 1, T, T): padding and look-ahead together, as Seq2Seq.make_trg_mask builds it."""
    return padding_mask(xp, lengths, length) & xp.asarray(np.tril(np.ones((length, length), bool)))


# ----- the gradcheck helper itself must be able to fail

class BadBiasLinear(Linear):
    """A Linear whose bias gradient is 1% too large, to show the checks catch one bad parameter."""

    def forward(self, x):
        from tinynmt.autograd import Function

        class ScaleGrad(Function):
            def forward(self, b):
                return b.copy()

            def backward(self, grad):
                return (grad * 1.01,)

        return x @ self.weight.T + ScaleGrad.apply(self.bias)


def test_gradcheck_each_names_the_one_wrong_parameter(rng):
    layer = to_float64(BadBiasLinear(3, 4, generator=rng))
    x = random_input(np, rng, 2, 3)
    with pytest.raises(GradcheckError, match="bias"):
        gradcheck_each(lambda: layer(x), layer.named_parameters())
    gradcheck_each(lambda: layer(x), [("weight", layer.weight), ("x", x)])  # the rest is right


# ----- Linear, Embedding, LayerNorm, Dropout

@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_numpy_and_gradchecks(xp, rng, bias):
    layer = on(Linear(5, 4, bias=bias, generator=rng), xp)
    assert layer.weight.shape == (4, 5) and (layer.bias is None) != bias
    x = random_input(xp, rng, 2, 3, 5)
    y = layer(x)
    expected = to_numpy(x.data) @ to_numpy(layer.weight.data).T
    if bias:
        expected = expected + to_numpy(layer.bias.data)
    assert y.dtype == np.float64 and y.shape == (2, 3, 4)
    np.testing.assert_allclose(to_numpy(y.data), expected, rtol=1e-12)
    gradcheck_each(lambda: layer(x), [("x", x), *layer.named_parameters()])


def test_linear_default_init_is_pytorchs_bound(rng):
    layer = Linear(100, 50, generator=rng)
    bound = 1 / np.sqrt(100)
    for param in (layer.weight, layer.bias):
        assert param.dtype == np.float32
        assert np.abs(param.data).max() <= bound
        assert np.abs(param.data).max() > 0.9 * bound   # drawn from the whole range


def test_embedding_gathers_rows_and_sums_repeated_gradients(xp, rng):
    layer = on(Embedding(V, D, generator=rng), xp)
    ids = np.array([[3, 5, 3], [0, 11, 3]])           # row 3 is read three times
    out = layer(ids)
    assert out.shape == (2, 3, D) and out.dtype == np.float64
    np.testing.assert_array_equal(to_numpy(out.data), to_numpy(layer.weight.data)[ids])
    weights = rng.standard_normal((2, 3, D))
    out.backward(xp.asarray(weights))
    grad = to_numpy(layer.weight.grad)
    np.testing.assert_allclose(grad[3], weights[0, 0] + weights[0, 2] + weights[1, 2])
    np.testing.assert_array_equal(grad[[1, 2, 4, 6, 7, 8, 9, 10]], 0)   # never read
    layer.weight.grad = None
    gradcheck_each(lambda: layer(ids), layer.named_parameters())


@pytest.mark.parametrize("bad", [-1, V, V + 7])
def test_embedding_rejects_out_of_range_ids_naming_the_limit(rng, bad):
    layer = Embedding(V, D, generator=rng)
    with pytest.raises(IndexError, match=rf"\[0, {V}\)"):
        layer(np.array([[1, 2], [bad, 3]]))


def test_layer_norm_matches_numpy_and_gradchecks(xp, rng):
    layer = on(LayerNorm(D), xp)
    np.testing.assert_array_equal(to_numpy(layer.weight.data), 1)
    np.testing.assert_array_equal(to_numpy(layer.bias.data), 0)
    layer.weight.data = xp.asarray(rng.uniform(0.5, 1.5, D))   # away from the default, so
    layer.bias.data = xp.asarray(rng.standard_normal(D))       # a swapped gamma/beta shows
    x = random_input(xp, rng, 2, 3, D)
    xn = to_numpy(x.data)
    expected = ((xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
                * to_numpy(layer.weight.data) + to_numpy(layer.bias.data))
    np.testing.assert_allclose(to_numpy(layer(x).data), expected, rtol=1e-10, atol=1e-12)
    gradcheck_each(lambda: layer(x), [("x", x), *layer.named_parameters()], max_full=512)


def test_dropout_p0_is_the_identity_and_gradchecks(xp, rng):
    layer = Dropout(0.0).to(device(xp))
    x = random_input(xp, rng, 3, 4)
    np.testing.assert_array_equal(to_numpy(layer(x).data), to_numpy(x.data))
    gradcheck_each(lambda: layer(x) * 1.0, [("x", x)])


def test_dropout_with_a_fixed_mask_matches_formula_and_gradchecks(xp, rng):
    p = 0.4
    generator = FixedUniforms(xp)
    layer = Dropout(p, generator=generator)
    x = random_input(xp, rng, 4, 5)
    keep = to_numpy(generator.random(x.shape, np.float64)) >= p
    assert 0 < keep.sum() < keep.size
    np.testing.assert_allclose(to_numpy(layer(x).data), to_numpy(x.data) * keep / (1 - p))
    gradcheck_each(lambda: layer(x), [("x", x)])


def test_dropout_train_drops_about_p_and_eval_is_the_identity(rng):
    from tinynmt.backend import Generator
    layer = Dropout(0.25, generator=Generator(0))
    x = Tensor(np.ones((200, 100), dtype=np.float32))
    y = layer(x).data
    assert y.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    assert not np.array_equal(layer(x).data, y)           # a fresh mask each call
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x.data)
    layer.train()
    assert (layer(x).data == 0).any()


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(p)


# ----- the loss

def cross_entropy_reference(logits, target, ignore_index, label_smoothing):
    """PyTorch's definition in NumPy: mean over non-ignored rows of -sum(q * log_softmax)."""
    log_p = logits - logits.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    q = np.full(logits.shape, label_smoothing / logits.shape[1])
    q[np.arange(len(target)), np.where(target == ignore_index, 0, target)] += 1 - label_smoothing
    per_row = -(q * log_p).sum(-1)
    valid = target != ignore_index
    return per_row[valid].sum() / max(valid.sum(), 1)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_loss_matches_numpy_and_gradchecks(xp, rng, label_smoothing):
    criterion = CrossEntropyLoss(ignore_index=1, label_smoothing=label_smoothing)
    logits = random_input(xp, rng, 6, V)
    target = np.array([3, 1, 0, 11, 1, 5])                 # two rows ignored
    loss = criterion(logits, xp.asarray(target))
    assert loss.shape == () and loss.dtype == np.float64
    expected = cross_entropy_reference(to_numpy(logits.data), target, 1, label_smoothing)
    assert float(loss.item()) == pytest.approx(expected, rel=1e-12)
    loss.backward()
    np.testing.assert_array_equal(to_numpy(logits.grad)[[1, 4]], 0)   # ignored rows
    gradcheck_each(lambda: criterion(logits, xp.asarray(target)), [("logits", logits)])


def test_cross_entropy_loss_of_an_all_ignored_batch_is_zero(rng):
    logits = Tensor(rng.standard_normal((3, V)).astype(np.float32), requires_grad=True)
    loss = CrossEntropyLoss(ignore_index=1)(logits, np.ones(3, dtype=np.int64))
    assert loss.item() == 0.0 and loss.dtype == np.float32
    loss.backward()
    np.testing.assert_array_equal(logits.grad, 0)


def test_cross_entropy_loss_rejects_bad_shapes_and_smoothing(rng):
    logits = Tensor(rng.standard_normal((2, 3, V)).astype(np.float32))
    with pytest.raises(ValueError, match=r"expected logits \(N, V\) and target \(N,\)"):
        CrossEntropyLoss()(logits, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropyLoss(label_smoothing=1.0)


# ----- attention and feed-forward

def attention_reference(layer, query, key, value, mask):
    """The tutorial's attention in plain NumPy: (output (B, Q, D), weights (B, H, Q, K))."""
    def linear(fc, x):
        return x @ to_numpy(fc.weight.data).T + to_numpy(fc.bias.data)

    batch, heads, head_dim = query.shape[0], layer.n_heads, layer.head_dim

    def split(x):                                               # (B, L, D) -> (B, H, L, Dh)
        return x.reshape(batch, -1, heads, head_dim).transpose(0, 2, 1, 3)

    Q, K, Vv = split(linear(layer.fc_q, query)), split(linear(layer.fc_k, key)), split(linear(layer.fc_v, value))
    energy = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(head_dim)   # (B, H, Q, K)
    energy = np.where(to_numpy(mask), energy, -np.inf)
    weights = np.exp(energy - energy.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    x = (weights @ Vv).transpose(0, 2, 1, 3).reshape(batch, -1, heads * head_dim)  # (B, Q, D)
    return linear(layer.fc_o, x), weights


def test_attention_matches_numpy_with_a_padding_mask(xp, rng):
    layer = on(MultiHeadAttentionLayer(D, H, 0.0), xp)
    query, key = random_input(xp, rng, 2, 3, D), random_input(xp, rng, 2, 5, D)
    value = random_input(xp, rng, 2, 5, D)
    mask = padding_mask(xp, [5, 2], 5)                          # (B, 1, 1, K)
    out, weights = layer(query, key, value, mask)
    ref_out, ref_weights = attention_reference(
        layer, *(to_numpy(t.data) for t in (query, key, value)), mask)
    assert out.shape == (2, 3, D) and weights.shape == (2, H, 3, 5)
    np.testing.assert_allclose(to_numpy(weights.data), ref_weights, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(to_numpy(out.data), ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(to_numpy(weights.data)[1, :, :, 2:], 0)   # masked keys


def test_attention_gradchecks_with_a_mask_and_masked_keys_get_no_gradient(xp, rng):
    layer = on(MultiHeadAttentionLayer(D, H, 0.0), xp)
    query, key = random_input(xp, rng, 2, 3, D), random_input(xp, rng, 2, 4, D)
    value = random_input(xp, rng, 2, 4, D)
    mask = padding_mask(xp, [4, 2], 4)
    gradcheck_each(lambda: layer(query, key, value, mask)[0],
                   [("query", query), ("key", key), ("value", value), *layer.named_parameters()],
                   max_full=256)
    key.grad = value.grad = None
    layer(query, key, value, mask)[0].sum().backward()
    for t in (key, value):
        grad = to_numpy(t.grad)
        np.testing.assert_array_equal(grad[1, 2:], 0)   # behind the mask: exactly nothing
        assert np.abs(grad[1, :2]).min() > 0 and np.abs(grad[0]).min() > 0


def test_attention_gradchecks_with_a_causal_mask(xp, rng):
    layer = on(MultiHeadAttentionLayer(D, H, 0.0), xp)
    x = random_input(xp, rng, 2, 4, D)
    mask = causal_mask(xp, [4, 3], 4)
    out, weights = layer(x, x, x, mask)
    np.testing.assert_array_equal(np.triu(to_numpy(weights.data)[0, 0], k=1), 0)
    gradcheck_each(lambda: layer(x, x, x, mask)[0], [("x", x), *layer.named_parameters()],
                   max_full=256)


def test_attention_rejects_heads_that_do_not_divide_hidden():
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttentionLayer(10, 3, 0.0)


def test_feedforward_matches_numpy_and_gradchecks(xp, rng):
    layer = on(PositionwiseFeedforwardLayer(D, P, 0.0), xp)
    x = random_input(xp, rng, 2, 3, D)
    w1, b1 = to_numpy(layer.fc_1.weight.data), to_numpy(layer.fc_1.bias.data)
    w2, b2 = to_numpy(layer.fc_2.weight.data), to_numpy(layer.fc_2.bias.data)
    expected = np.maximum(to_numpy(x.data) @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(to_numpy(layer(x).data), expected, rtol=1e-10, atol=1e-12)
    gradcheck_each(lambda: layer(x), [("x", x), *layer.named_parameters()], max_full=256)


# ----- encoder and decoder layers and stacks

def test_encoder_layer_gradchecks(xp, rng):
    layer = on(EncoderLayer(D, H, P, 0.0), xp)
    src = random_input(xp, rng, 2, 4, D)
    mask = padding_mask(xp, [4, 3], 4)
    out = layer(src, mask)
    assert out.shape == (2, 4, D) and out.dtype == np.float64
    gradcheck_each(lambda: layer(src, mask), [("src", src), *layer.named_parameters()],
                   max_full=0)


def test_encoder_layer_gradchecks_with_fixed_dropout_masks(xp, rng):
    layer = on(EncoderLayer(D, H, P, 0.3), xp)
    set_dropout_generator(layer, FixedUniforms(xp))
    src = random_input(xp, rng, 2, 4, D)
    mask = padding_mask(xp, [4, 3], 4)
    with_dropout = to_numpy(layer(src, mask).data)
    assert not np.allclose(with_dropout, to_numpy(layer.eval()(src, mask).data))
    layer.train()
    gradcheck_each(lambda: layer(src, mask), [("src", src), *layer.named_parameters()],
                   max_full=0)


def test_decoder_layer_gradchecks(xp, rng):
    layer = on(DecoderLayer(D, H, P, 0.0), xp)
    trg, enc_src = random_input(xp, rng, 2, 3, D), random_input(xp, rng, 2, 4, D)
    trg_mask, src_mask = causal_mask(xp, [3, 2], 3), padding_mask(xp, [4, 3], 4)
    out, attention = layer(trg, enc_src, trg_mask, src_mask)
    assert out.shape == (2, 3, D) and attention.shape == (2, H, 3, 4)
    gradcheck_each(lambda: layer(trg, enc_src, trg_mask, src_mask)[0],
                   [("trg", trg), ("enc_src", enc_src), *layer.named_parameters()], max_full=0)


def test_encoder_gradchecks_every_parameter(xp, rng):
    encoder = on(Encoder(V, D, 2, H, P, 0.0, max_length=6), xp)
    src = rng.integers(0, V, (2, 5))
    mask = padding_mask(xp, [5, 3], 5)
    out = encoder(src, mask)
    assert out.shape == (2, 5, D) and out.dtype == np.float64
    gradcheck_each(lambda: encoder(src, mask), encoder.named_parameters(), max_full=0,
                   n_directions=4)


def test_decoder_gradchecks_every_parameter(xp, rng):
    decoder = on(Decoder(V, D, 2, H, P, 0.0, max_length=6), xp)
    trg = rng.integers(0, V, (2, 4))
    enc_src = random_input(xp, rng, 2, 5, D)
    trg_mask, src_mask = causal_mask(xp, [4, 2], 4), padding_mask(xp, [5, 3], 5)
    logits, attention = decoder(trg, enc_src, trg_mask, src_mask)
    assert logits.shape == (2, 4, V) and attention.shape == (2, H, 4, 5)
    gradcheck_each(lambda: decoder(trg, enc_src, trg_mask, src_mask)[0],
                   [("enc_src", enc_src), *decoder.named_parameters()], max_full=0,
                   n_directions=4)
