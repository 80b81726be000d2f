"""attention_dropout and activation_dropout: None keeps the tutorial's dropout (the layer's one
probability everywhere); a number sets the dropout on the attention weights, or after the
feed-forward ReLU, apart. Masks are drawn where they should be, eval mode draws none, and the
layers gradcheck with the masks held fixed.

Legend: B batch, S source length, T target length, D hidden, H heads, P pf_dim.
"""
import numpy as np
import pytest

from tinynmt.autograd import no_grad
from tinynmt.backend import to_numpy
from tinynmt.training.config import Config, ConfigError
from tinynmt.nn import (DecoderLayer, Dropout, EncoderLayer, ModelConfig, build_transformer, set_dropout_generator)

from test_nn_layers import (D, H, P, FixedUniforms, causal_mask, gradcheck_each, on, padding_mask,
                            random_input)

PAD = 1
SMALL = dict(hid_dim=D, enc_layers=1, dec_layers=1, enc_heads=H, dec_heads=H, enc_pf_dim=P,
             dec_pf_dim=P, max_length=10)


def dropout_ps(model):
    """{module name: p} of every Dropout in the model."""
    return {name: m.p for name, m in model.named_modules() if isinstance(m, Dropout)}


def kind(name):
    """Which dropout a module name is: attention, activation (feed-forward) or the layer's."""
    if name.endswith("attention.dropout"):
        return "attention"
    return "activation" if name.endswith("positionwise_feedforward.dropout") else "layer"


class RecordingMasks(FixedUniforms):
    """FixedUniforms that also records the shape and p of every mask drawn."""

    def __init__(self, xp):
        super().__init__(xp)
        self.drawn = []

    def keep_mask(self, shape, p):
        self.drawn.append((shape, p))
        return super().keep_mask(shape, p)


def batch(rng):
    src = rng.integers(4, 12, (2, 5))                                   # (B, S)
    trg = rng.integers(4, 12, (2, 4))                                   # (B, T)
    src[1, 3:] = PAD
    trg[1, 3:] = PAD
    return src, trg


def test_none_is_the_tutorials_dropout_and_numbers_set_the_two_apart():
    assert (ModelConfig().attention_dropout, ModelConfig().activation_dropout) == (None, None)
    tutorial = build_transformer(12, 12, PAD, PAD, ModelConfig(**SMALL, enc_dropout=0.1, dec_dropout=0.2))
    for name, p in dropout_ps(tutorial).items():                        # the side's one probability
        assert p == (0.1 if name.startswith("encoder") else 0.2), name
    config = ModelConfig(**SMALL, enc_dropout=0.1, dec_dropout=0.2, attention_dropout=0.3,
                         activation_dropout=0.0)
    ps = dropout_ps(build_transformer(12, 12, PAD, PAD, config))
    assert {kind(n) for n in ps} == {"attention", "activation", "layer"}
    for name, p in ps.items():
        side = 0.1 if name.startswith("encoder") else 0.2
        assert p == {"attention": 0.3, "activation": 0.0, "layer": side}[kind(name)], name
    assert sum(kind(n) == "attention" for n in ps) == 3                 # self, self and cross


@pytest.mark.parametrize("option", ["attention_dropout", "activation_dropout"])
def test_each_option_is_a_probability_flag_and_config_key(option):
    with pytest.raises(ConfigError, match=rf"{option} must be in \[0, 1\)"):
        Config(**{option: 1.0})
    assert Config.from_dict(Config(**{option: 0.25}).to_dict()) == Config(**{option: 0.25})
    assert Config.from_dict({}) == Config()                             # older files: None


@pytest.mark.parametrize("changes, shapes", [
    (dict(attention_dropout=0.5), {(2, H, 5, 5), (2, H, 4, 4), (2, H, 4, 5)}),   # (B, H, Q, K)
    (dict(activation_dropout=0.5), {(2, 5, P), (2, 4, P)}),                       # (B, L, P)
])
def test_masks_are_drawn_only_where_the_option_puts_them_and_never_in_eval(rng, changes, shapes):
    # every other dropout 0: the masks drawn are the option's alone
    model = build_transformer(12, 12, PAD, PAD, ModelConfig(**SMALL, enc_dropout=0.0, dec_dropout=0.0,
                                                            **changes))
    masks = RecordingMasks(np)
    set_dropout_generator(model, masks)
    src, trg = batch(rng)
    train_logits, _ = model(src, trg)
    assert {shape for shape, _ in masks.drawn} == shapes and {p for _, p in masks.drawn} == {0.5}
    masks.drawn.clear()
    with no_grad():
        eval_logits, _ = model.eval()(src, trg)
    assert masks.drawn == []
    assert not np.allclose(to_numpy(train_logits.data), to_numpy(eval_logits.data))
    plain = build_transformer(12, 12, PAD, PAD, ModelConfig(**SMALL, enc_dropout=0.0, dec_dropout=0.0))
    with no_grad():                                                     # same seed, same weights
        np.testing.assert_array_equal(to_numpy(plain.eval()(src, trg)[0].data), to_numpy(eval_logits.data))


def test_zero_turns_them_off_while_the_layer_dropout_stays(rng):
    config = ModelConfig(**SMALL, attention_dropout=0.0, activation_dropout=0.0)   # dropout 0.1 stays
    model = build_transformer(12, 12, PAD, PAD, config)
    masks = RecordingMasks(np)
    set_dropout_generator(model, masks)
    model(*batch(rng))
    assert {p for _, p in masks.drawn} == {0.1}
    assert {shape[-1] for shape, _ in masks.drawn} == {D}               # (B, L, D): embeddings, sublayers


@pytest.mark.parametrize("attention, activation", [(0.3, None), (None, 0.3), (0.3, 0.4)])
def test_layers_gradcheck_with_fixed_attention_and_activation_masks(xp, rng, attention, activation):
    options = dict(attention_dropout=attention, activation_dropout=activation)   # layer dropout 0
    encoder_layer = on(EncoderLayer(D, H, P, 0.0, **options), xp)
    decoder_layer = on(DecoderLayer(D, H, P, 0.0, **options), xp)
    src, trg = random_input(xp, rng, 2, 4, D), random_input(xp, rng, 2, 3, D)
    src_mask, trg_mask = padding_mask(xp, [4, 3], 4), causal_mask(xp, [3, 2], 3)
    for layer, run, inputs in [
            (encoder_layer, lambda: encoder_layer(src, src_mask), [("src", src)]),
            (decoder_layer, lambda: decoder_layer(trg, src, trg_mask, src_mask)[0],
             [("trg", trg), ("enc_src", src)])]:
        set_dropout_generator(layer, FixedUniforms(xp))
        with_masks = to_numpy(run().data)
        layer.eval()
        assert not np.allclose(with_masks, to_numpy(run().data))        # the masks do something
        layer.train()
        gradcheck_each(run, [*inputs, *layer.named_parameters()], max_full=0, n_directions=2)


@pytest.mark.parametrize("attention, activation", [(None, None), (0.3, 0.0)])
def test_the_pytorch_reference_puts_the_same_dropouts_in_the_same_places(attention, activation):
    torch = pytest.importorskip("torch")
    from tinynmt.interop.torch_reference import build_torch_transformer
    config = ModelConfig(**SMALL, attention_dropout=attention, activation_dropout=activation)
    ours = build_transformer(12, 12, PAD, PAD, config)
    theirs = build_torch_transformer(12, 12, PAD, PAD, hid_dim=D, n_layers=1, n_heads=H, pf_dim=P,
                                     dropout=0.1, max_length=10, attention_dropout=attention,
                                     activation_dropout=activation)
    theirs_ps = {name: m.p for name, m in theirs.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert dropout_ps(ours) == theirs_ps
