"""`python -m tinynmt.data`: sizes on success; one line on stderr and status 2 on bad input."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, **env):
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "tinynmt.data", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_prints_split_and_vocab_sizes():
    result = run_cli("--src", "de", "--trg", "en")
    assert result.returncode == 0, result.stderr
    assert "train: 29000 pairs" in result.stdout
    assert "vocab de: 9597, vocab en: 7704" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--src", "xx"], "error: unknown language code 'xx'; valid: cs, de, en, fr"),
    (["--min-freq", "two"], "error: argument --min-freq: invalid int value: 'two'"),
    (["--tokenizer", "spacy"], "error: unknown tokenizer 'spacy'"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_files_exit_2_with_one_line(tmp_path):
    (tmp_path / "train.de").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "train.en").write_bytes(b"a\n\xff\n")
    result = run_cli("--data-dir", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'train.en'}: line 2")


def test_missing_files_exit_2(tmp_path):
    result = run_cli("--src", "cs", "--no-download", TINYNMT_CACHE=str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "train.cs.gz not found" in result.stderr and "--data-dir" in result.stderr
