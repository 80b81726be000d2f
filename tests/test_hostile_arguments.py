"""Issue 22, family 6: several checkpoints are `--checkpoint A --checkpoint B`, and an argument is
always a sentence: nothing is guessed from the file system, so a long sentence, "50 km/h" or a
word that happens to name a file are translated like any other."""
import pytest

from hostile_tools import assert_one_error_line, make_run, status_of
from tinynmt.data import get_tokenizer
from tinynmt.decoding import Ensemble, Translator
from tinynmt.programs import evaluate, translate
from tinynmt.training.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-args")
    return make_run(root / "a", seed=1), make_run(root / "b", seed=2)


def translated(model_of, sentences):
    ckpt = model_of[0]
    return Translator(model_of[1], ckpt.src_vocab, ckpt.trg_vocab, get_tokenizer("whitespace"),
                      warn=lambda message: None).translate(sentences)


def test_long_sentences_slashes_and_file_names_are_sentences(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(runs[0].parent)                 # "a" and "b/best.npz" exist as paths here
    sentences = [" ".join(["hund"] * 300), "50 km/h", "b/best.npz", "a"]
    assert status_of(translate.main, ["--checkpoint", "a", *sentences, "--output", tmp_path / "out"]) == 0
    ckpt = load_checkpoint(runs[0])
    assert (tmp_path / "out").read_text().split("\n")[:-1] == translated((ckpt, ckpt.model), sentences)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warning: an argument ending in .npz is translated as a sentence")
    assert all(line.startswith("warning: ") for line in err)        # the 300 words are cut to fit


def test_an_ensemble_repeats_the_flag(runs, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--checkpoint", runs[0], "--checkpoint", runs[1] / "best.npz", "zwei kinder", "--output", out]
    assert status_of(translate.main, argv) == 0
    a, b = load_checkpoint(runs[0]), load_checkpoint(runs[1])
    assert out.read_text() == translated((a, Ensemble([a.model, b.model])), ["zwei kinder"])[0] + "\n"
    assert status_of(evaluate.main, ["--checkpoint", runs[0], runs[1], "--src-file", out, "--ref-file", out]) == 2
    assert_one_error_line(capsys.readouterr().err, "unrecognized arguments")   # evaluate takes no sentences
