"""--layer-norms separate: the later notebook's three norms per layer, under its names, so that
its weights load; the article's one shared norm stays the default."""
import numpy as np
import pytest

from tinynmt.autograd import gradcheck
from tinynmt.training.config import Config, ConfigError
from tinynmt.programs.train import build_parser
from tinynmt.nn import ModelConfig, build_transformer

from test_model import PAD, SRC_V, TRG_V, loss_fn, padded_batch, to_float64

D = 16


def model(layer_norms, seed=0):
    return build_transformer(SRC_V, TRG_V, PAD, PAD, ModelConfig(
        hid_dim=D, enc_layers=2, dec_layers=2, enc_heads=2, dec_heads=2, enc_pf_dim=32, dec_pf_dim=32,
        enc_dropout=0.0, dec_dropout=0.0, max_length=12, layer_norms=layer_norms), seed=seed)


def test_separate_norms_have_the_later_notebooks_names_and_two_d_more_each():
    shared, separate = model("shared").state_dict(), model("separate").state_dict()
    norm_names = sorted(k for k in separate if "norm" in k)
    assert norm_names[:4] == ["decoder.layers.0.enc_attn_layer_norm.bias", "decoder.layers.0.enc_attn_layer_norm.weight",
                              "decoder.layers.0.ff_layer_norm.bias", "decoder.layers.0.ff_layer_norm.weight"]
    assert {k.split(".")[-2] for k in norm_names} == {"self_attn_layer_norm", "enc_attn_layer_norm",
                                                      "ff_layer_norm"}
    assert not any(".layer_norm." in k for k in separate)
    assert {k.split(".")[-2] for k in shared if "norm" in k} == {"layer_norm"}
    extra = (2 * 1 + 2 * 2) * 2 * D          # encoder layers gain one norm, decoder layers two
    assert sum(a.size for a in separate.values()) == sum(a.size for a in shared.values()) + extra


def test_each_separate_norm_is_its_own_parameter_and_gradchecks():
    m = to_float64(model("separate"))
    src, trg = padded_batch(np.random.default_rng(0))
    loss_fn(m, src, trg).backward()
    for name, p in m.named_parameters():
        if "norm" in name:
            assert np.abs(p.grad).max() > 0, f"{name} got no gradient"
    layer = m.decoder.layers[0]
    params = [layer.self_attn_layer_norm.weight, layer.enc_attn_layer_norm.weight, layer.ff_layer_norm.bias]
    gradcheck(lambda *_: loss_fn(m, src, trg), params, n_directions=4)


def test_the_config_flag_builds_either_and_refuses_others():
    assert Config().layer_norms == "shared"
    args = vars(build_parser().parse_args(["--layer-norms", "separate"]))
    config = Config(**args, hid_dim=16, enc_heads=2, dec_heads=2)
    m = build_transformer(SRC_V, TRG_V, PAD, PAD, config)
    assert "encoder.layers.0.ff_layer_norm.weight" in m.state_dict()
    with pytest.raises(ConfigError, match="unknown layer_norms 'pre'"):
        Config(layer_norms="pre")


def test_separate_norms_match_pytorch_and_import_from_a_torch_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    from tinynmt.interop.torch_reference import build_torch_transformer, load_tinynmt_weights
    ours = model("separate", seed=3)
    theirs = load_tinynmt_weights(build_torch_transformer(SRC_V, TRG_V, PAD, PAD, hid_dim=D, n_layers=2,
                                                          n_heads=2, pf_dim=32, dropout=0.0, max_length=12,
                                                          layer_norms="separate"), ours)
    src, trg = padded_batch(np.random.default_rng(1))
    logits, _ = ours(src, trg[:, :-1])
    expected, _ = theirs(torch.from_numpy(src), torch.from_numpy(trg[:, :-1]))
    np.testing.assert_allclose(logits.data, expected.detach().numpy(), atol=1e-4)
