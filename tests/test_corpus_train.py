"""Training on your own corpus: a new language pair, cased, end to end from the command line;
Multi30k prepared trains exactly as Multi30k raw; bad corpora stop before training."""
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_distributed import MPIEXEC, environment, needs_mpi, step_losses
from tiny_runs import TINY, records
from tinynmt.data import load_prepared, prepare_corpus, read_multi30k, save_prepared
from tinynmt.data.encode_corpus import PrepareOptions
from tinynmt.data.vocab import EOS_IDX, SOS_IDX
from tinynmt.training.build import load_data
from tinynmt.training.checkpoint import load_checkpoint
from tinynmt.training.config import Config
from tinynmt.training.corpus_data import prepared_fields
from tinynmt.training.loop import train

ROOT = Path(__file__).resolve().parents[1]
MODEL = {k: v for k, v in TINY.items() if k not in ("limit_train", "limit_eval", "epochs")}
WORDS = ["Haus", "Baum", "Katze", "Hund", "rot", "grün", "Der", "Die", "läuft", "schläft", "groß", "klein"]
CASED = {w: w[::-1].capitalize() if w[0].isupper() else w[::-1] for w in WORDS}   # a made-up cased "language"


def python(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def model_flags(**changes):
    words = []
    for key, value in dict(MODEL, **changes).items():
        flag = "--" + key.replace("_", "-")
        words += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return words


def tiny_corpus(folder, seed=3):
    """train/dev/test PREFIX.xx-a / PREFIX.yy_b: word-by-word "translations" of cased sentences."""
    rng = random.Random(seed)
    for name, n in (("train", 160), ("dev", 24), ("test", 24)):
        src = [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 7))) + "." for _ in range(n)]
        trg = [" ".join(CASED[w] for w in line[:-1].split()) + "." for line in src]
        for lang, lines in (("xx-a", src), ("yy_b", trg)):
            (folder / f"{name}.{lang}").write_text("".join(s + "\n" for s in lines), encoding="utf-8")
    return folder


def test_a_new_cased_pair_prepares_trains_translates_and_evaluates(tmp_path):
    corpus = tiny_corpus(tmp_path)
    prepared = python("-m", "tinynmt.prepare", "--train", corpus / "train", "--valid", corpus / "dev", "--test",
                      corpus / "test", "--src", "xx-a", "--trg", "yy_b", "--tokenizer", "bpe", "--bpe-merges", "30",
                      "--no-lower", "--min-freq", "1", "--out", tmp_path / "data")
    assert prepared.returncode == 0, prepared.stderr
    run = tmp_path / "run"
    trained = python("-m", "tinynmt.train", "--data", tmp_path / "data", *model_flags(max_steps=12, epochs=3),
                     "--out", run)
    assert trained.returncode == 0, trained.stderr
    assert "xx-a->yy_b, tokenizer bpe (lower=False)" in trained.stdout and records(run, "test")
    ckpt = load_checkpoint(run)
    assert ckpt.config.src == "xx-a" and ckpt.tokenizer.lower is False and len(ckpt.tokenizer.merges) == 30
    # raw text in: the tokenizer and vocabulary the checkpoint carries give the training ids
    data = load_prepared(tmp_path / "data")
    for i, line in enumerate(data.val.src_text):
        assert [SOS_IDX, *ckpt.src_vocab.encode(ckpt.tokenizer.tokenize(line)), EOS_IDX] == data.val.src.sentence(i)
    # text out: the target pieces join back into the cased, detokenized line
    for line in data.val.trg_text:
        assert ckpt.tokenizer.detokenize(ckpt.tokenizer.tokenize(line)) == line
    translated = python("-m", "tinynmt.translate", "--checkpoint", run, "Der Hund schläft.", "Die rote Katze läuft.")
    assert translated.returncode == 0, translated.stderr
    assert len(translated.stdout.splitlines()) == 2 and "@@" not in translated.stdout
    for split, what, label in (([], "test", "Test"), (["--split", "val"], "val", "Val.")):
        scored = python("-m", "tinynmt.evaluate", "--checkpoint", run, *split)
        assert scored.returncode == 0, scored.stderr
        assert f"{tmp_path / 'data'} {what} xx-a->yy_b, 24 sentences" in scored.stdout
        assert f"| {label} Loss: " in scored.stdout and f"| {label} PPL: " in scored.stdout
        assert "case:mixed" in scored.stdout and "BLEU" in scored.stdout


def test_raw_files_train_and_evaluate_without_a_folder(tmp_path):
    corpus = tiny_corpus(tmp_path)
    run = tmp_path / "run"
    trained = python("-m", "tinynmt.train", "--train", corpus / "train", "--valid", corpus / "dev", "--test",
                     corpus / "test", "--src", "xx-a", "--trg", "yy_b", "--no-lower", "--min-freq", "1",
                     *model_flags(max_steps=6, epochs=2), "--out", run)
    assert trained.returncode == 0, trained.stderr
    assert load_checkpoint(run).config.test_prefix == str(corpus / "test")
    resumed = python("-m", "tinynmt.train", "--resume", run, "--max-steps", "8")
    assert resumed.returncode == 0, resumed.stderr
    assert [r["step"] for r in records(run, "step")] == list(range(1, 9))
    scored = python("-m", "tinynmt.evaluate", "--checkpoint", run)
    assert scored.returncode == 0, scored.stderr
    assert f"{corpus / 'test'} xx-a->yy_b, 24 sentences" in scored.stdout and "case:mixed" in scored.stdout


N = 200   # Multi30k pairs of each split: the equality holds for any cut


def multi30k_files(folder):
    for name, split in (("train", "train"), ("val", "val"), ("test", "test_2016_flickr")):
        for lang, lines in zip(("de", "en"), read_multi30k(split, "de", "en")):
            (folder / f"{name}.{lang}").write_text("".join(s + "\n" for s in lines[:N]), encoding="utf-8")
    return folder


@pytest.mark.parametrize("recipe", [dict(), dict(tokenizer="bpe", bpe_merges=300, share_vocab=True, min_freq=1)])
def test_multi30k_prepared_trains_exactly_as_multi30k_raw(tmp_path, recipe):
    files = multi30k_files(tmp_path)
    options = PrepareOptions(limit=N, **recipe)
    save_prepared(prepare_corpus("de", "en", "data/multi30k/train", "data/multi30k/val",
                                 ["data/multi30k/test_2016_flickr"], options), tmp_path / "data")
    common = dict(MODEL, max_steps=20, epochs=4, **recipe)
    configs = {"multi30k": Config(**common, limit_train=N, limit_eval=N, out=str(tmp_path / "a")),
               "prepared": Config(**{**common, **prepared_fields(tmp_path / "data")}, data=str(tmp_path / "data"),
                                  out=str(tmp_path / "b")),
               "raw files": Config(**common, train=str(files / "train"), valid=str(files / "val"),
                                   test_prefix=str(files / "test"), out=str(tmp_path / "c"))}
    datas = {name: load_data(config) for name, config in configs.items()}
    ref = datas["multi30k"]
    for name, data in datas.items():
        assert data.src_vocab == ref.src_vocab and data.trg_vocab == ref.trg_vocab, name
        ours, theirs = data.train.batches(shuffle=True, seed=1234), ref.train.batches(shuffle=True, seed=1234)
        assert all(np.array_equal(a, b) for a, b in zip(ours.plan(1), theirs.plan(1))), name
        idx = ours.plan(0)[0]
        assert np.array_equal(ours.make_batch(idx).trg, theirs.make_batch(idx).trg), name
    losses = {}
    for name, config in configs.items():
        train(config)
        losses[name] = step_losses(Path(config.out))
    assert len(losses["multi30k"]) == 20
    assert losses["prepared"].tolist() == losses["multi30k"].tolist() == losses["raw files"].tolist()


@needs_mpi
def test_two_ranks_map_the_same_folder_and_train_as_one_process(tmp_path):
    tiny_corpus(tmp_path)
    save_prepared(prepare_corpus("xx-a", "yy_b", tmp_path / "train", tmp_path / "dev",
                                 options=PrepareOptions(min_freq=1)), tmp_path / "data")
    flags = ["-m", "tinynmt.train", "--data", tmp_path / "data",
             *model_flags(max_steps=10, epochs=2, enc_dropout=0.0, dec_dropout=0.0)]
    alone = python(*flags, "--out", tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    two = subprocess.run([MPIEXEC, "-n", "2", sys.executable, *map(str, flags), "--out", str(tmp_path / "two")],
                         cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=180)
    assert two.returncode == 0, two.stderr
    a, b = step_losses(tmp_path / "alone"), step_losses(tmp_path / "two")
    assert len(a) == len(b) == 10 and np.allclose(a, b, rtol=0, atol=2e-5)


@pytest.mark.parametrize("case, message", [
    ("mismatched counts", "error: parallel files differ in length: {d}/train.xx-a has 160 lines, "
                          "{d}/train.yy_b has 159"),
    ("empty split", "error: {d}/dev.yy_b: the file is empty"),
    ("missing side", "error: {d}/test.xx-a: no such file (nor test.xx-a.gz)"),
    ("not text", "error: {d}/dev.xx-a: not a text file (a NUL byte on line 1)"),
    ("no valid", "error: --train needs --valid PREFIX"),
    ("no folder", "error: {d}/nowhere: no such prepared folder"),
    ("folder and flag disagree", "error: --bpe-merges 99 differs from {d}/data's None"),
])
def test_bad_corpora_stop_before_training_with_one_line(tmp_path, case, message):
    corpus = tiny_corpus(tmp_path)
    if case == "mismatched counts":
        path = corpus / "train.yy_b"
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    elif case == "empty split":
        (corpus / "dev.yy_b").write_text("")
    elif case == "missing side":
        (corpus / "test.xx-a").unlink()
    elif case == "not text":
        (corpus / "dev.xx-a").write_bytes(bytes(range(256)))
    files = ["--train", corpus / "train", "--valid", corpus / "dev", "--test", corpus / "test"]
    if case == "no valid":
        files = files[:2]
    elif case == "no folder":
        files = ["--data", tmp_path / "nowhere"]
    elif case == "folder and flag disagree":
        save_prepared(prepare_corpus("xx-a", "yy_b", corpus / "train", corpus / "dev"), tmp_path / "data")
        files = ["--data", tmp_path / "data", "--bpe-merges", "99"]
    langs = [] if "folder" in case else ["--src", "xx-a", "--trg", "yy_b"]
    result = python("-m", "tinynmt.train", *files, *langs, *model_flags(max_steps=2), "--out", tmp_path / "run")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(message.format(d=tmp_path))
    assert not (tmp_path / "run").exists()
