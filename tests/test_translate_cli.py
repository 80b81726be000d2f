"""python -m tinynmt.translate end to end: a tiny checkpoint, real subprocesses, bad input."""
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tinynmt.training.checkpoint import load_checkpoint, save_checkpoint
from tinynmt.training.config import Config
from tinynmt.data import EOS_IDX, PAD_IDX, SPECIALS, Vocab, get_tokenizer
from tinynmt.decoding import Translator
from tinynmt.nn import build_transformer
from tinynmt.programs.translate import main

ROOT = Path(__file__).resolve().parents[1]
SRC_WORDS = "ein mann eine frau hund läuft schläft im park . zwei kinder spielen".split()
TRG_WORDS = "a man woman dog runs sleeps in the park . two children play".split()
TINY = dict(hid_dim=32, enc_layers=2, dec_layers=2, enc_heads=4, dec_heads=4, enc_pf_dim=48,
            dec_pf_dim=48, max_length=12)


def make_checkpoint(folder):
    """A run folder holding best.npz of a random tiny model (positions: 12, so 10 words)."""
    config = Config(**TINY)
    src_vocab, trg_vocab = Vocab(SPECIALS + tuple(SRC_WORDS)), Vocab(SPECIALS + tuple(TRG_WORDS))
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, config, seed=config.seed)
    model.decoder.fc_out.bias.data[EOS_IDX] += 1.5  # outputs of several lengths
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / "best.npz", model, config, src_vocab, trg_vocab, get_tokenizer("whitespace"))
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("run"))


def library_translations(run_dir, lines, **options):
    ckpt = load_checkpoint(run_dir)
    return Translator(ckpt.model, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, warn=lambda m: None,
                      **options).translate(lines)


def cli(*args, stdin=b""):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tinynmt.translate", *map(str, args)], input=stdin,
                          capture_output=True, cwd=ROOT, env=env, timeout=120)


def test_sentences_as_arguments_with_attention(run_dir, tmp_path):
    png = tmp_path / "att.png"
    sentences = ["Ein Mann schläft im Park .", "zwei kinder spielen"]
    proc = cli("--checkpoint", run_dir, *sentences, "--max-len", 9, "--attention", png)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode("utf-8").split("\n") == library_translations(run_dir, sentences, max_steps=9) + [""]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("beam", [1, 3])
def test_bad_lines_in_a_file(run_dir, tmp_path, beam):
    lines = [b"ein mann schl\xc3\xa4ft .", b"", b"xyzzy quux", b"ein mann und eine frau und zwei kinder spielen im park mit hund .",
             b"ein \xff mann", b"zwei kinder spielen im park", b"   "]
    src, out = tmp_path / "in.de", tmp_path / "out.en"
    src.write_bytes(b"\n".join(lines) + b"\n")
    proc = cli("--checkpoint", run_dir / "best.npz", "--input", src, "--output", out, "--beam", beam,
               "--batch-size", 2, "--max-len", 9)
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    got = out.read_text(encoding="utf-8").split("\n")
    assert got[-1] == "" and len(got) - 1 == len(lines)           # one output line per input line
    text = [line.decode("utf-8", errors="replace") for line in lines]
    text[4] = ""                                                  # the non-UTF-8 line: left empty
    assert got[:-1] == library_translations(run_dir, text, beam=beam, max_steps=9, batch_size=2)
    assert got[1] == "" and got[4] == "" and got[6] == ""
    assert len(stderr.strip().split("\n")) == 2                   # one warning per bad line
    assert f"{src} line 4: 14 tokens" in stderr and "dropped the last 4" in stderr
    assert f"{src} line 5: not valid UTF-8 (byte 0xff" in stderr


def test_stdin_is_answered_line_by_line(run_dir):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with subprocess.Popen([sys.executable, "-m", "tinynmt.translate", "--checkpoint", str(run_dir),
                           "--max-len", "9"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=ROOT, env=env) as proc:
        try:
            expected = library_translations(run_dir, ["ein hund läuft", "", "zwei kinder"], max_steps=9)
            answers = []
            for line in (b"ein hund l\xc3\xa4uft\n", b"\xfe\xfe\n", b"zwei kinder\n"):
                proc.stdin.write(line)
                proc.stdin.flush()
                # the answer must come while stdin is still open: flushed per line
                ready, _, _ = select.select([proc.stdout], [], [], 60)
                assert ready, "no answer within 60 s: the line was not flushed"
                answers.append(proc.stdout.readline().decode("utf-8").rstrip("\n"))
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
            assert answers == expected
            assert "<stdin> line 2: not valid UTF-8" in proc.stderr.read().decode()
        finally:
            proc.kill()


def test_missing_checkpoint_is_one_line_error(tmp_path):
    proc = cli("--checkpoint", tmp_path / "nope.npz", "ein mann")
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert proc.stderr.decode().startswith("error: ") and proc.stderr.decode().count("\n") == 1
    assert "nope.npz" in proc.stderr.decode()


@pytest.mark.parametrize("case", ["garbage", "truncated", "empty folder"])
def test_unloadable_checkpoint_is_one_line_error(run_dir, tmp_path, capsys, case):
    if case == "garbage":
        path = tmp_path / "x.npz"
        path.write_bytes(b"not a checkpoint at all")
    elif case == "truncated":
        path = tmp_path / "cut.npz"
        data = (run_dir / "best.npz").read_bytes()
        path.write_bytes(data[:len(data) // 2])
    else:
        path = tmp_path / "empty"
        path.mkdir()
    assert main(["--checkpoint", str(path), "ein mann"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1


def test_bad_options_are_one_line_errors(run_dir, capsys):
    assert main(["--checkpoint", str(run_dir), "--max-len", "13", "ein mann"]) == 2
    assert "--max-len 13 is more than the model's 12" in capsys.readouterr().err
    assert main(["--checkpoint", str(run_dir), "--beam", "0", "ein mann"]) == 2
    assert capsys.readouterr().err == "error: --beam must be a positive integer, got 0\n"
    assert main(["--checkpoint", str(run_dir), "--input", "/nonexistent/file"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read --input /nonexistent/file")
