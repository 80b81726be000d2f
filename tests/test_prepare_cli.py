"""`python -m tinynmt.prepare`: a folder on success; one `error:` line and status 2 on a bad corpus."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tinynmt.prepare", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def write(folder, name, src_lines, trg_lines):
    for lang, lines in (("xx-a", src_lines), ("yy_b", trg_lines)):
        (folder / f"{name}.{lang}").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder / name


def corpus_args(d, out="out"):
    return ["--train", d / "train", "--valid", d / "dev", "--src", "xx-a", "--trg", "yy_b", "--out", d / out]


def test_writes_the_folder_and_names_invalid_lines(tmp_path):
    write(tmp_path, "train", ["Ein Hund .", "Zwei Katzen .", "bad", ""], ["A dog .", "Two cats .", "x", "y"])
    write(tmp_path, "dev", ["Ein Hund ."], ["A dog ."])
    path = tmp_path / "train.yy_b"
    path.write_bytes(path.read_bytes().replace(b"x\n", b"\xc3(\n"))
    result = run_cli(*corpus_args(tmp_path), "--no-lower", "--min-freq", "1", "--test", tmp_path / "dev")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"warning: {path}:3: not valid UTF-8; its pair is dropped\n"
    assert "train: 2 of 4 pairs kept; dropped 1 invalid_utf8, 1 empty" in result.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["options"]["lower"] is False and list(manifest["splits"]) == ["train", "val", "test"]
    assert (tmp_path / "out" / "test.yy_b").read_text() == "A dog .\n"
    again = run_cli(*corpus_args(tmp_path))
    assert again.returncode == 2 and again.stderr.startswith(f"error: --out {tmp_path / 'out'} already exists")


@pytest.mark.parametrize("case, message", [
    ("mismatched counts", "error: parallel files differ in length: {d}/train.xx-a has 3 lines, "
                          "{d}/train.yy_b has 2"),
    ("empty split", "error: {d}/dev.yy_b: the file is empty"),
    ("missing side", "error: {d}/dev.xx-a: no such file (nor dev.xx-a.gz)"),
    ("not text", "error: {d}/train.xx-a: not a text file (a NUL byte on line 1)"),
    ("bad option", "error: argument --max-len-ratio: max_len_ratio must be in [1, 2,147,483,647], got 0.5"),
    ("bad flag", "error: argument --max-len: invalid int value: 'long'"),
])
def test_bad_corpora_end_in_one_error_line(tmp_path, case, message):
    write(tmp_path, "train", ["a", "b", "c"], ["d", "e"] if case == "mismatched counts" else ["d", "e", "f"])
    write(tmp_path, "dev", ["a"], [] if case == "empty split" else ["d"])
    extra = {"bad option": ["--max-len-ratio", "0.5"], "bad flag": ["--max-len", "long"]}.get(case, [])
    if case == "missing side":
        (tmp_path / "dev.xx-a").unlink()
    elif case == "not text":
        (tmp_path / "train.xx-a").write_bytes(bytes(range(256)) * 4)
    result = run_cli(*corpus_args(tmp_path), *extra)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(message.format(d=tmp_path))
    assert not (tmp_path / "out").exists()
