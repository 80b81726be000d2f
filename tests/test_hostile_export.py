"""Issue 22, family 8: `export --from` takes the heads of --vocab-from's config when the file
does not say (not the tutorial's 8), and weights that are not finite are refused both ways."""
import numpy as np
import pytest

from hostile_tools import assert_one_error_line, make_run, status_of
from tinynmt.decoding import Translator
from tinynmt.programs import export
from tinynmt.training.checkpoint import load_checkpoint, save_checkpoint

safetensors_numpy = pytest.importorskip("safetensors.numpy")
SENTENCES = ["ein mann schläft im park", "zwei kinder", "hund"]


def translations(path):
    ckpt = load_checkpoint(path)
    return Translator(ckpt.model, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, max_steps=10).translate(SENTENCES)


@pytest.fixture
def bare(tmp_path):
    """(a run of a 2-head model, its weights as a safetensors file without tinynmt's metadata)."""
    run = make_run(tmp_path / "run")
    path = tmp_path / "bare.safetensors"
    safetensors_numpy.save_file(load_checkpoint(run).model.state_dict(), str(path))
    return run, path


def test_heads_come_from_the_vocab_from_checkpoint(bare, tmp_path, capsys):
    run, path = bare
    assert status_of(export.main, ["--from", path, "--vocab-from", run, "--to", tmp_path / "i.npz"]) == 0
    assert "1+1 layers, 2+2 heads" in capsys.readouterr().out
    assert translations(tmp_path / "i.npz") == translations(run)


def test_weights_that_are_not_finite_are_refused(bare, tmp_path, capsys):
    run, path = bare
    tensors = safetensors_numpy.load_file(str(path))
    tensors["decoder.fc_out.weight"][3, :2] = [np.nan, np.inf]
    safetensors_numpy.save_file(tensors, str(path))
    assert status_of(export.main, ["--from", path, "--vocab-from", run, "--to", tmp_path / "i.npz"]) == 2
    assert_one_error_line(capsys.readouterr().err, "tensor decoder.fc_out.weight holds 2 values that are not finite")
    ckpt = load_checkpoint(run)
    ckpt.model.encoder.layers[0].self_attention.fc_q.bias.data[0] = np.nan
    save_checkpoint(run / "nan.npz", ckpt.model, ckpt.config, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer)
    assert status_of(export.main, ["--checkpoint", run / "nan.npz", "--to", tmp_path / "x.safetensors"]) == 2
    assert_one_error_line(capsys.readouterr().err, "tensor encoder.layers.0.self_attention.fc_q.bias holds 1 ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.safetensors", "run"]
