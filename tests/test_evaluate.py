"""python -m tinynmt.evaluate and evaluate_bleu/evaluate_loss: BLEU as sacreBLEU's CLI gives it."""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinynmt import no_grad
from tinynmt.training.checkpoint import load_checkpoint, save_checkpoint
from tinynmt.training.config import Config
from tinynmt.data import EOS_IDX, PAD_IDX, SPECIALS, Vocab, get_tokenizer
from tinynmt.decoding import Translator
from tinynmt.decoding.metrics import TOKENIZED_BLEU_NAME, evaluate_bleu, evaluate_loss, moses_tokenize
from tinynmt.programs.evaluate import main
from tinynmt.nn import build_transformer

ROOT = Path(__file__).resolve().parents[1]
SRC_WORDS = "ein mann eine frau hund läuft schläft im park . zwei kinder spielen".split()
TRG_WORDS = "a man woman dog runs sleeps in the park . two children play".split()
SOURCES = ["ein mann schläft .", "zwei kinder spielen im park .", "eine frau läuft", "ein hund läuft im park",
           "zwei hunde", "", "eine frau und ein mann", "kinder spielen", "ein mann läuft .", "hund"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """best.npz of a random tiny model with the tutorial's lowercasing whitespace tokenizer."""
    folder = tmp_path_factory.mktemp("run")
    config = Config(hid_dim=32, enc_layers=2, dec_layers=2, enc_heads=4, dec_heads=4, enc_pf_dim=48,
                    dec_pf_dim=48, max_length=12)
    src_vocab, trg_vocab = Vocab(SPECIALS + tuple(SRC_WORDS)), Vocab(SPECIALS + tuple(TRG_WORDS))
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, config, seed=config.seed)
    model.decoder.fc_out.bias.data[EOS_IDX] += 1.5
    save_checkpoint(folder / "best.npz", model, config, src_vocab, trg_vocab, get_tokenizer("whitespace"))
    return folder


@pytest.fixture(scope="module")
def files(run_dir, tmp_path_factory):
    """Source file and references made from the model's own output, changed so that BLEU is
    neither 0 nor 100 and lowercasing matters (capitalised first words, dropped words)."""
    ckpt = load_checkpoint(run_dir)
    hyps = Translator(ckpt.model, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, max_steps=9).translate(SOURCES)
    refs = []
    for i, hyp in enumerate(hyps):
        words = hyp.split() or ["nothing"]
        if i % 3 == 0:
            words[0] = words[0].capitalize()
        elif i % 3 == 1:
            words = words[:-2] + ["the", "park"]
        refs.append(" ".join(words))
    folder = tmp_path_factory.mktemp("data")
    (folder / "src.de").write_text("\n".join(SOURCES) + "\n", encoding="utf-8")
    (folder / "ref.en").write_text("\n".join(refs) + "\n", encoding="utf-8")
    return folder / "src.de", folder / "ref.en", hyps, refs


def sacrebleu_cli(ref, hyp, *flags):
    """The score sacreBLEU's own command line prints (2 decimals)."""
    proc = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-b", "-w", "2", *flags],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_printed_bleu_equals_sacrebleu_cli(run_dir, files, tmp_path):
    src, ref, hyps, refs = files
    hyp = tmp_path / "hyp.en"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tinynmt.evaluate", "--checkpoint", str(run_dir), "--src-file",
                           str(src), "--ref-file", str(ref), "--output", str(hyp), "--max-len", "9"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert hyp.read_text(encoding="utf-8").split("\n")[:-1] == hyps
    line = next(l for l in proc.stdout.splitlines() if l.startswith("BLEU|"))
    assert "|case:lc|" in line and "|nrefs:1|" in line and "|tok:13a|" in line
    printed = re.search(r" = (\d+\.\d\d) ", line).group(1)
    assert printed == sacrebleu_cli(ref, hyp, "-lc")
    assert 0 < float(printed) < 100
    assert printed != sacrebleu_cli(ref, hyp)      # lowercasing changes the score here
    # the tokenized BLEU: sacreBLEU's CLI on Moses-tokenized files, splitting on spaces, unsmoothed
    line = next(l for l in proc.stdout.splitlines() if l.startswith(TOKENIZED_BLEU_NAME + "|"))
    assert "|moses:lc.norm.tok.en|" in line and "|tok:none|smooth:none|" in line
    for path, lines in ((tmp_path / "ref.tok", refs), (tmp_path / "hyp.tok", hyps)):
        path.write_text("".join(t + "\n" for t in moses_tokenize(lines, "en")), encoding="utf-8")
    tokenized = sacrebleu_cli(tmp_path / "ref.tok", tmp_path / "hyp.tok", "-tok", "none", "-s", "none")
    assert re.search(r" = (\d+\.\d\d) ", line).group(1) == tokenized
    assert 0 < float(tokenized) < 100
    assert re.search(r"\| Test Loss: \d+\.\d{3} \| Test PPL: +\d+\.\d{3} \|", proc.stdout)
    assert re.search(r"10 sentences in \d+\.\d\d s, \d+\.\d sentences/s", proc.stdout)


def test_evaluate_bleu_function(run_dir, files):
    src, ref, hyps, refs = files
    ckpt = load_checkpoint(run_dir)
    args = (ckpt.model, SOURCES, refs, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer)
    score, got, seconds = evaluate_bleu(*args, max_steps=9)
    assert got == hyps and seconds > 0
    assert score.signature.startswith("nrefs:1|case:lc|")
    cased, _, _ = evaluate_bleu(*args, max_steps=9, lowercase=False)
    assert cased.score < score.score
    beam, beam_hyps, _ = evaluate_bleu(*args, max_steps=9, beam=3, batch_size=4)
    assert len(beam_hyps) == len(SOURCES) and beam_hyps[5] == ""


@no_grad()
def test_evaluate_loss_is_the_mean_token_cross_entropy(run_dir, files):
    src, ref, hyps, refs = files
    ckpt = load_checkpoint(run_dir)
    model, tok = ckpt.model, ckpt.tokenizer
    result = evaluate_loss(model, SOURCES, refs, ckpt.src_vocab, ckpt.trg_vocab, tok, batch_size=4)
    # by hand, one pair at a time: -log p(reference token) summed over <eos>-included tokens
    nll, count = 0.0, 0
    for s, r in zip(SOURCES, refs):
        if not s.split():
            continue  # the pair with an empty side is skipped
        src_ids = [2, *ckpt.src_vocab.encode(tok.tokenize(s)), 3]
        trg_ids = [2, *ckpt.trg_vocab.encode(tok.tokenize(r)), 3]
        logits, _ = model(np.array([src_ids]), np.array([trg_ids[:-1]]))
        log_probs = logits.log_softmax(axis=-1).numpy()[0]
        nll -= float(log_probs[np.arange(len(trg_ids) - 1), trg_ids[1:]].sum())
        count += len(trg_ids) - 1
    assert result.n_tokens == count
    assert math.isclose(result.token_nll, nll / count, rel_tol=1e-5)
    single = evaluate_loss(model, SOURCES, refs, ckpt.src_vocab, ckpt.trg_vocab, tok, batch_size=100)
    assert math.isclose(single.loss, nll / count, rel_tol=1e-5)   # one batch: batch mean = token mean
    assert not math.isclose(result.loss, result.token_nll, rel_tol=1e-7)  # batches of 4, 4, 1: a mean of means


def test_multi30k_split(run_dir, capsys):
    """The default test split comes from the repository's data/multi30k (1,000 sentences)."""
    assert main(["--checkpoint", str(run_dir), "--max-len", "2", "--batch-size", "500"]) == 0
    out = capsys.readouterr().out
    assert "Multi30k test_2016_flickr de->en, 1,000 sentences" in out
    assert "BLEU|nrefs:1|case:lc|" in out
    assert f"{TOKENIZED_BLEU_NAME}|moses:lc.norm.tok.en|" in out


@pytest.mark.parametrize("argv, message", [
    (["--src-file", "x.de"], "give --src-file and --ref-file together"),
    (["--split", "nonsense"], "unknown Multi30k split 'nonsense'"),
    (["--src-file", "SRC", "--ref-file", "SHORT"], "differ in length"),
    (["--src-file", "SRC", "--ref-file", "/nonexistent/ref.en"], "/nonexistent/ref.en: no such file"),
])
def test_bad_arguments_are_one_line_errors(run_dir, files, tmp_path, capsys, argv, message):
    short = tmp_path / "short.en"
    short.write_text("one line\n", encoding="utf-8")
    argv = [{"SRC": str(files[0]), "SHORT": str(short)}.get(a, a) for a in argv]
    assert main(["--checkpoint", str(run_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_missing_checkpoint(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
