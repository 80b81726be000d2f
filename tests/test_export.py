"""python -m tinynmt.export: tinynmt -> safetensors -> tinynmt is bit-exact; PyTorch loads the
file into the tutorial's classes and its torch.save'd state_dict imports back; bad files
give one `error: ...` line and exit status 2.

Legend: B batch, S source length, T target length, V vocabulary.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinynmt.autograd import no_grad
from tinynmt.training.checkpoint import load_checkpoint, save_checkpoint
from tinynmt.training.config import Config
from tinynmt.data import EOS_IDX, PAD_IDX, SPECIALS, Vocab, get_tokenizer
from tinynmt.decoding import Translator
from tinynmt.interop.weights import TIED
from tinynmt.programs.export import main
from tinynmt.nn import build_transformer

safetensors_numpy = pytest.importorskip("safetensors.numpy")

ROOT = Path(__file__).resolve().parents[1]
SRC_WORDS = "ein mann eine frau hund läuft schläft im park . zwei kinder spielen".split()
TRG_WORDS = "a man woman dog runs sleeps in the park . two kids play".split()
TINY = dict(hid_dim=16, enc_layers=2, dec_layers=2, enc_heads=2, dec_heads=2, enc_pf_dim=24,
            dec_pf_dim=24, max_length=12, enc_dropout=0.0, dec_dropout=0.0)
UNEVEN = dict(dec_layers=1, dec_heads=4, dec_pf_dim=40, max_len=9)    # sides read separately
LINES = ["ein mann schläft im park .", "zwei kinder spielen", "eine frau läuft"]


def make_checkpoint(path, tie=False, share=False, **changes):
    """A random tiny model's checkpoint (its EOS bias raised so outputs end at several lengths)."""
    config = Config(**dict(TINY, **changes), tie_embeddings=tie, share_vocab=share)
    joint = list(dict.fromkeys(SRC_WORDS + TRG_WORDS))                  # one vocabulary, no repeats
    src_words, trg_words = (joint, joint) if share else (SRC_WORDS, TRG_WORDS)
    src_vocab, trg_vocab = Vocab(SPECIALS + tuple(src_words)), Vocab(SPECIALS + tuple(trg_words))
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, config, seed=config.seed)
    model.decoder.fc_out.bias.data[EOS_IDX] += 1.0
    save_checkpoint(path, model, config, src_vocab, trg_vocab, get_tokenizer("whitespace"))
    return path


def translations(path):
    ckpt = load_checkpoint(path)
    translator = Translator(ckpt.model, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, max_steps=10,
                            warn=lambda m: None)
    return translator.translate(LINES)


def run_ok(*argv):
    assert main([str(a) for a in argv]) == 0


def assert_same_checkpoint(a, b):
    """Bit-identical weights, the same config (sizes, tie), vocabularies and tokenizer."""
    one, two = load_checkpoint(a), load_checkpoint(b)
    state_one, state_two = one.model.state_dict(), two.model.state_dict()
    assert list(state_one) == list(state_two)
    for name, array in state_one.items():
        assert array.dtype == state_two[name].dtype == np.float32, name
        np.testing.assert_array_equal(array, state_two[name], err_msg=name)
    assert one.config == two.config
    assert (one.src_vocab, one.trg_vocab, one.tokenizer) == (two.src_vocab, two.trg_vocab, two.tokenizer)
    assert one.model.num_parameters() == two.model.num_parameters()


@pytest.mark.parametrize("tie, share, changes", [(False, False, {}), (True, False, {}), (True, True, {}),
                                                (False, False, UNEVEN)])
def test_round_trip_is_bit_exact_and_translates_the_same(tmp_path, tie, share, changes):
    ckpt = make_checkpoint(tmp_path / "best.npz", tie=tie, share=share, **changes)
    run_ok("--checkpoint", ckpt, "--to", tmp_path / "m.safetensors")
    run_ok("--from", tmp_path / "m.safetensors", "--to", tmp_path / "back.npz")
    assert_same_checkpoint(ckpt, tmp_path / "back.npz")
    assert translations(tmp_path / "back.npz") == translations(ckpt)
    model = load_checkpoint(tmp_path / "back.npz").model
    dec = model.decoder
    assert (dec.fc_out.weight is dec.tok_embedding.weight) == tie
    assert (model.encoder.tok_embedding.weight is dec.tok_embedding.weight) == share


@pytest.mark.parametrize("tie, share", [(False, False), (True, False), (True, True)])
def test_the_file_holds_every_name_as_its_own_copy_and_the_context(tmp_path, tie, share):
    ckpt = make_checkpoint(tmp_path / "best.npz", tie=tie, share=share)
    run_ok("--checkpoint", ckpt, "--to", tmp_path / "m.safetensors")
    tensors = safetensors_numpy.load_file(tmp_path / "m.safetensors")
    loaded = load_checkpoint(ckpt)
    state = loaded.model.state_dict()
    assert sorted(tensors) == sorted(state)
    for name, array in state.items():
        np.testing.assert_array_equal(tensors[name], array, err_msg=name)
    from safetensors import safe_open
    with safe_open(tmp_path / "m.safetensors", framework="np") as f:
        meta = f.metadata()
    tied = list(TIED[:3 if share else 2]) if tie else []
    assert json.loads(meta["tied"]) == tied
    assert Config.from_dict(json.loads(meta["config"])) == loaded.config
    assert Vocab.from_dict(json.loads(meta["trg_vocab"])) == loaded.trg_vocab


def test_tied_copies_that_differ_import_untied(tmp_path):
    """Trained further in PyTorch, where the copies are separate Parameters: nothing is lost."""
    ckpt = make_checkpoint(tmp_path / "best.npz", tie=True, share=True)
    run_ok("--checkpoint", ckpt, "--to", tmp_path / "m.safetensors")
    tensors = safetensors_numpy.load_file(tmp_path / "m.safetensors")
    metadata = _metadata(tmp_path / "m.safetensors")
    tensors["decoder.fc_out.weight"] = tensors["decoder.fc_out.weight"] + np.float32(0.5)
    safetensors_numpy.save_file(tensors, tmp_path / "trained.safetensors", metadata=metadata)
    run_ok("--from", tmp_path / "trained.safetensors", "--to", tmp_path / "back.npz")
    back = load_checkpoint(tmp_path / "back.npz")
    assert not back.config.tie_embeddings
    for name, array in back.model.state_dict().items():
        np.testing.assert_array_equal(array, tensors[name], err_msg=name)


def _metadata(path):
    from safetensors import safe_open
    with safe_open(path, framework="np") as f:
        return f.metadata()


# ----- PyTorch: the tutorial's classes load the file; torch.save'd weights import back

def torch_model_from(path, tmp_path):
    """The tutorial's PyTorch Seq2Seq holding an exported checkpoint's weights (strict load)."""
    pytest.importorskip("torch")
    from safetensors.torch import load_file
    from tinynmt.interop.torch_reference import build_torch_transformer
    ckpt = load_checkpoint(path)
    run_ok("--checkpoint", path, "--to", tmp_path / "m.safetensors")
    c = ckpt.config
    reference = build_torch_transformer(len(ckpt.src_vocab), len(ckpt.trg_vocab), PAD_IDX, PAD_IDX,
                                        hid_dim=c.hid_dim, n_layers=c.enc_layers, n_heads=c.enc_heads,
                                        pf_dim=c.enc_pf_dim, dropout=0.0, max_length=c.max_length,
                                        layer_norms=c.layer_norms)
    reference.load_state_dict(load_file(tmp_path / "m.safetensors"), strict=True)
    return ckpt, reference.eval()


@pytest.mark.parametrize("tie", [False, True])
def test_pytorch_loads_the_file_and_gives_the_same_logits(tmp_path, tie):
    torch = pytest.importorskip("torch")
    ckpt, reference = torch_model_from(make_checkpoint(tmp_path / "best.npz", tie=tie, share=tie),
                                       tmp_path)
    rng = np.random.default_rng(0)
    src = rng.integers(4, len(ckpt.src_vocab), (3, 7))
    src[0, 5:] = PAD_IDX
    trg = rng.integers(4, len(ckpt.trg_vocab), (3, 6))
    trg[1, 4:] = PAD_IDX
    with no_grad():
        logits, _ = ckpt.model(src, trg)                                    # (B, T, V)
    with torch.no_grad():
        t_logits, _ = reference(torch.from_numpy(src), torch.from_numpy(trg))
    assert np.abs(logits.data).max() > 0.1                                  # not trivially equal
    np.testing.assert_allclose(logits.data, t_logits.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("tie", [False, True])
def test_a_torch_saved_state_dict_imports_and_translates_the_same(tmp_path, tie):
    torch = pytest.importorskip("torch")
    ckpt_path = make_checkpoint(tmp_path / "best.npz", tie=tie, share=tie)
    _, reference = torch_model_from(ckpt_path, tmp_path)
    torch.save(reference.state_dict(), tmp_path / "tut6-model.pt")
    run_ok("--from", tmp_path / "tut6-model.pt", "--vocab-from", ckpt_path, "--heads", 2,
           "--to", tmp_path / "imported.npz")
    assert_same_checkpoint(ckpt_path, tmp_path / "imported.npz")
    assert translations(tmp_path / "imported.npz") == translations(ckpt_path)


def test_the_later_notebooks_separate_norms_import_as_such(tmp_path):
    torch = pytest.importorskip("torch")
    ckpt_path = make_checkpoint(tmp_path / "best.npz", layer_norms="separate")
    _, reference = torch_model_from(ckpt_path, tmp_path)
    assert "decoder.layers.0.enc_attn_layer_norm.weight" in reference.state_dict()
    torch.save(reference.state_dict(), tmp_path / "tut6-model.pt")
    run_ok("--from", tmp_path / "tut6-model.pt", "--vocab-from", make_checkpoint(tmp_path / "shared.npz"),
           "--heads", 2, "--to", tmp_path / "imported.npz")
    assert load_checkpoint(tmp_path / "imported.npz").config.layer_norms == "separate"
    assert translations(tmp_path / "imported.npz") == translations(ckpt_path)


def test_a_torch_file_without_heads_takes_the_vocab_froms_heads(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    ckpt_path = make_checkpoint(tmp_path / "best.npz")                  # 2 heads, not the tutorial's 8
    _, reference = torch_model_from(ckpt_path, tmp_path)
    torch.save(reference.state_dict(), tmp_path / "tut6-model.pt")
    run_ok("--from", tmp_path / "tut6-model.pt", "--vocab-from", ckpt_path, "--to", tmp_path / "i.npz")
    assert "2+2 heads" in capsys.readouterr().out
    assert translations(tmp_path / "i.npz") == translations(ckpt_path)


# ----- bad input: one line, exit status 2

def damaged(tmp_path, change):
    """A safetensors export of a tiny checkpoint with `change(tensors)` applied, metadata kept."""
    ckpt = make_checkpoint(tmp_path / "best.npz")
    run_ok("--checkpoint", ckpt, "--to", tmp_path / "m.safetensors")
    tensors = safetensors_numpy.load_file(tmp_path / "m.safetensors")
    change(tensors)
    out = tmp_path / "bad.safetensors"
    safetensors_numpy.save_file(tensors, out, metadata=_metadata(tmp_path / "m.safetensors"))
    return out


def other_vocab(tmp_path):
    """A checkpoint whose target vocabulary is two tokens longer than the exported model's."""
    config = Config(**TINY)
    src, trg = Vocab(SPECIALS + tuple(SRC_WORDS)), Vocab(SPECIALS + tuple(TRG_WORDS + ["x", "y"]))
    model = build_transformer(len(src), len(trg), PAD_IDX, PAD_IDX, config, seed=config.seed)
    save_checkpoint(tmp_path / "other.npz", model, config, src, trg, get_tokenizer("whitespace"))
    return tmp_path / "other.npz"


def no_metadata(tmp_path):
    tensors = safetensors_numpy.load_file(damaged(tmp_path, lambda t: None))
    safetensors_numpy.save_file(tensors, tmp_path / "plain.safetensors")
    return tmp_path / "plain.safetensors"


BAD = {
    "missing": (lambda p: ["--from", damaged(p, lambda t: t.pop("decoder.layers.0.layer_norm.bias"))],
                "missing tensor decoder.layers.0.layer_norm.bias"),
    "missing-size": (lambda p: ["--from", damaged(p, lambda t: t.pop("decoder.pos_embedding.weight"))],
                     "missing tensor decoder.pos_embedding.weight"),
    "unexpected": (lambda p: ["--from", damaged(p, lambda t: t.update(extra=np.zeros(3, np.float32)))],
                   "unexpected tensor extra"),
    "shape": (lambda p: ["--from", damaged(p, lambda t: t.update({
        "encoder.layers.1.self_attention.fc_o.bias": np.zeros(15, np.float32)}))],
        "tensor encoder.layers.1.self_attention.fc_o.bias has shape (15,), expected (16,)"),
    "positions": (lambda p: ["--from", damaged(p, lambda t: t.update({
        "decoder.pos_embedding.weight": np.zeros((9, 16), np.float32)}))], "tinynmt's config has one max_length"),
    "vocab": (lambda p: ["--from", damaged(p, lambda t: None), "--vocab-from", other_vocab(p)],
              "target vocabulary of --vocab-from"),
    "no-vocab": (lambda p: ["--from", no_metadata(p)], "holds no vocabularies: give --vocab-from"),
    "heads": (lambda p: ["--from", damaged(p, lambda t: None), "--heads", "3"], "does not divide hid_dim"),
    "garbage": (lambda p: ["--from", _write(p / "g.pt", b"not a model at all" * 10)],
                "neither a safetensors file nor a torch.save state_dict"),
    "npz": (lambda p: ["--from", make_checkpoint(p / "best.npz")], "is a tinynmt checkpoint already"),
    "absent": (lambda p: ["--from", p / "nothing.pt"], "no such file"),
    "export-absent": (lambda p: ["--checkpoint", p / "nothing.npz"], "no such checkpoint"),
    "export-vocab": (lambda p: ["--checkpoint", make_checkpoint(p / "best.npz"), "--heads", "2"],
                     "--vocab-from and --heads are for importing"),
}


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, case):
    make_args, message = BAD[case]
    args = [str(a) for a in make_args(tmp_path)]
    capsys.readouterr()
    assert main(args + ["--to", str(tmp_path / "out.file")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out.file").exists()


def test_a_pickled_whole_model_is_refused(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "whole.pt")   # not a state_dict
    assert main(["--from", str(tmp_path / "whole.pt"), "--to", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "weights_only" in err, err


def test_the_command_line_exit_status(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tinynmt.export", "--from", str(tmp_path / "x.pt"),
                           "--to", str(tmp_path / "y.npz")], capture_output=True, cwd=ROOT, env=env,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.decode() == f"error: {tmp_path / 'x.pt'}: no such file\n"
