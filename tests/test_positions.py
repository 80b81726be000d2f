"""--positions sinusoidal: Vaswani et al.'s fixed sin/cos table in place of the tutorial's learned
`pos_embedding`; nothing to train, the same forward, decoding, export and PyTorch parity."""
import numpy as np
import pytest

from tinynmt import no_grad
from tinynmt.autograd import gradcheck
from tinynmt.backend import to_numpy
from tinynmt.nn import ModelConfig, SinusoidalPositions, build_transformer
from tinynmt.nn.layers import sinusoid_table
from tinynmt.programs.train import build_parser
from tinynmt.training.config import Config, ConfigError

from test_model import PAD, SRC_V, TRG_V, assert_learns_to_reverse, loss_fn, padded_batch, to_float64

D = 16


def model(positions, seed=0, max_length=12):
    return build_transformer(SRC_V, TRG_V, PAD, PAD, ModelConfig(
        hid_dim=D, enc_layers=2, dec_layers=2, enc_heads=2, dec_heads=2, enc_pf_dim=32, dec_pf_dim=32,
        enc_dropout=0.0, dec_dropout=0.0, max_length=max_length, positions=positions), seed=seed)


def test_the_table_is_the_papers_formula_written_out():
    table = sinusoid_table(3, 4)                  # D = 4: frequencies 1 and 1/10000^(2/4) = 1/100
    expected = [[np.sin(p), np.cos(p), np.sin(p / 100), np.cos(p / 100)] for p in range(3)]
    assert table.dtype == np.float32 and table.shape == (3, 4)
    np.testing.assert_allclose(table, expected, rtol=0, atol=1e-7)
    odd = sinusoid_table(5, 5)                    # an odd width ends on a sine
    np.testing.assert_allclose(odd[:, 4], np.sin(np.arange(5) / 10000 ** (4 / 5)), atol=1e-7)


def test_the_layer_looks_rows_up_on_the_ids_device_and_trains_nothing(xp):
    layer = SinusoidalPositions(7, 6)
    assert layer.parameters() == [] and layer.state_dict() == {}
    out = layer(xp.arange(4)[None, :].repeat(2, axis=0))                 # (2, 4) -> (2, 4, 6)
    assert out.shape == (2, 4, 6) and not out.requires_grad and out.dtype == np.float32
    assert type(out.data) is type(xp.zeros(1))
    np.testing.assert_array_equal(to_numpy(out.data[1]), sinusoid_table(7, 6)[:4])
    with pytest.raises(IndexError, match=r"SinusoidalPositions: ids must lie in \[0, 7\)"):
        layer(np.array([[0, 7]]))


def test_a_sinusoidal_model_holds_no_position_weights_and_the_rest_is_unchanged():
    learned, fixed = model("learned").state_dict(), model("sinusoidal").state_dict()
    assert set(learned) - set(fixed) == {"encoder.pos_embedding.weight", "decoder.pos_embedding.weight"}
    assert set(fixed) <= set(learned)
    assert sum(a.size for a in learned.values()) - sum(a.size for a in fixed.values()) == 2 * 12 * D


def test_every_parameter_gradchecks_and_the_sinusoids_reach_the_encoder(rng):
    m = to_float64(model("sinusoidal"))
    src, trg = padded_batch(rng)
    loss_fn(m, src, trg).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
    params = [m.encoder.tok_embedding.weight, m.decoder.tok_embedding.weight,
              m.decoder.layers[0].self_attention.fc_q.weight]
    gradcheck(lambda *_: loss_fn(m, src, trg), params, max_full=0, n_directions=4)
    with no_grad():                 # one word four times: only its positions tell the copies apart
        enc_src, _ = m.encode(np.array([[5, 5, 5, 5]]))                  # (1, 4, D)
    assert np.abs(enc_src.data[0, 1:] - enc_src.data[0, :1]).max() > 1e-3


def test_a_sinusoidal_model_learns_to_reverse_its_input():
    """Reversal needs positions: the fixed table alone has to carry them."""
    assert_learns_to_reverse(positions="sinusoidal")


def test_the_flag_builds_either_and_refuses_others():
    assert Config().positions == "learned"
    args = vars(build_parser().parse_args(["--positions", "sinusoidal"]))
    config = Config(**args, hid_dim=16, enc_heads=2, dec_heads=2)
    m = build_transformer(SRC_V, TRG_V, PAD, PAD, config)
    assert isinstance(m.decoder.pos_embedding, SinusoidalPositions)
    with pytest.raises(ConfigError, match="unknown positions 'rotary'"):
        Config(positions="rotary")


@pytest.mark.parametrize("init", ["tutorial", "fairseq"])
def test_either_init_builds_a_sinusoidal_model(init):
    config = ModelConfig(hid_dim=D, enc_heads=2, dec_heads=2, positions="sinusoidal", init=init)
    m = build_transformer(SRC_V, TRG_V, PAD, PAD, config, seed=1)
    np.testing.assert_array_equal(m.encoder.pos_embedding(np.arange(3)).data, sinusoid_table(100, D)[:3])


# ----- decoding one position at a time

@no_grad()
def test_every_decoding_step_gives_the_forwards_logits(xp, rng):
    from test_decode_incremental import full_logits, sources, targets, tiny_model, close
    from tinynmt.decoding import IncrementalDecoder
    m = tiny_model(xp=xp, positions="sinusoidal")
    src = sources(rng)
    trg = targets(rng, len(src), 6)
    expected, _ = full_logits(m, src, trg)
    state = IncrementalDecoder(m, src, capacity=6)
    for t in range(6):
        logits, _ = state.next_logits(xp.asarray(trg[:, t]))
        close(logits.data[:, 0], expected[:, t])


# ----- export: PyTorch's tutorial model holds the table as its learned one

def test_export_round_trip_keeps_the_positions_fixed(tmp_path):
    pytest.importorskip("safetensors")
    from test_export import assert_same_checkpoint, make_checkpoint, run_ok, translations
    from tinynmt.training.checkpoint import load_checkpoint
    ckpt = make_checkpoint(tmp_path / "best.npz", positions="sinusoidal")
    run_ok("--checkpoint", ckpt, "--to", tmp_path / "m.safetensors")
    run_ok("--from", tmp_path / "m.safetensors", "--to", tmp_path / "back.npz")
    assert_same_checkpoint(ckpt, tmp_path / "back.npz")
    assert load_checkpoint(tmp_path / "back.npz").config.positions == "sinusoidal"
    assert translations(tmp_path / "back.npz") == translations(ckpt)


def test_pytorch_gives_the_same_logits_and_trained_tables_import_learned(tmp_path):
    torch = pytest.importorskip("torch")
    from test_export import make_checkpoint, run_ok, torch_model_from
    from tinynmt.training.checkpoint import load_checkpoint
    ckpt_path = make_checkpoint(tmp_path / "best.npz", positions="sinusoidal")
    ckpt, reference = torch_model_from(ckpt_path, tmp_path)
    np.testing.assert_array_equal(reference.encoder.pos_embedding.weight.detach().numpy(),
                                  sinusoid_table(12, 16))
    rng = np.random.default_rng(0)
    src, trg = rng.integers(4, len(ckpt.src_vocab), (3, 7)), rng.integers(4, len(ckpt.trg_vocab), (3, 6))
    with no_grad():
        logits, _ = ckpt.model(src, trg)
    with torch.no_grad():
        expected, _ = reference(torch.from_numpy(src), torch.from_numpy(trg))
    np.testing.assert_allclose(logits.data, expected.numpy(), atol=1e-4, rtol=0)
    with torch.no_grad():                         # trained further in PyTorch: a learned table now
        reference.decoder.pos_embedding.weight[3] += 0.25
    torch.save(reference.state_dict(), tmp_path / "tut6-model.pt")
    run_ok("--from", tmp_path / "tut6-model.pt", "--vocab-from", ckpt_path, "--heads", 2,
           "--to", tmp_path / "imported.npz")
    imported = load_checkpoint(tmp_path / "imported.npz")
    assert imported.config.positions == "learned"
    np.testing.assert_array_equal(imported.model.decoder.pos_embedding.weight.data[3],
                                  sinusoid_table(12, 16)[3] + np.float32(0.25))
    assert imported.model.num_parameters() == ckpt.model.num_parameters() + 2 * 12 * 16
