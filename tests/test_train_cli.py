"""`python -m tinynmt.train` as a user runs it: files, output, exit codes, signals, bad input."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinynmt.backend import BackendError, cupy_module
from tinynmt.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--hid-dim", "32", "--enc-layers", "1", "--dec-layers", "1", "--enc-heads", "2",
        "--dec-heads", "2", "--enc-pf-dim", "64", "--dec-pf-dim", "64", "--batch-size", "32"]
SMALL = ["--limit-train", "160", "--limit-eval", "32", "--no-plot"]   # 5 steps an epoch


def command(*args):
    return [sys.executable, "-m", "tinynmt.train", *args]


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def run(*args, timeout=120):
    return subprocess.run(command(*args), cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(result, *fragments, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """30 steps of the tiny model on 640 training pairs, with the full validation set."""
    out = tmp_path_factory.mktemp("cli") / "run"
    result = run(*TINY, "--limit-train", "640", "--max-steps", "30", "--log-every", "10",
                 "--out", str(out))
    return out, result


@pytest.mark.slow
def test_cli_trains_and_writes_the_run_folder(small_run):
    out, result = small_run
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Epoch: 01 \| Time: \d+m \d+s \| [\d,]+ target tokens/s$", result.stdout, re.M)
    assert re.search(r"^\tTrain Loss: \d+\.\d{3} \| Train PPL: +\d+\.\d{3}$", result.stdout, re.M)
    assert re.search(r"^\t Val\. Loss: \d+\.\d{3} \|  Val\. PPL: +\d+\.\d{3}", result.stdout, re.M)
    assert re.search(r"^\| Test Loss: \d+\.\d{3} \| Test PPL: +\d+\.\d{3} \|", result.stdout, re.M)
    assert re.search(r"^\| Test BLEU \(greedy\): \d+\.\d{2} \| nrefs:1\|case:lc\|", result.stdout, re.M)
    assert re.search(r"^\| Test BLEU \(Moses-tokenized, lowercased; fairseq/multeval style\), greedy: \d+\.\d{2} "
                     r"\| moses:lc\.norm\.tok\.en\|", result.stdout, re.M)
    assert "val: 1014 pairs" in result.stdout
    for name in ("best.npz", "last.npz", "metrics.jsonl", "config.json"):
        assert (out / name).is_file(), name
    kinds = [json.loads(line)["kind"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert kinds == ["start", "step", "step", "epoch", "step", "epoch", "test"]
    assert json.loads((out / "config.json").read_text())["max_steps"] == 30
    test_record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= test_record["bleu_greedy"] <= 100 and "13a" in test_record["bleu_signature"]
    assert 0 <= test_record["tokenized_bleu_greedy"] <= 100
    assert "|tok:none|smooth:none|" in test_record["tokenized_bleu_signature"]
    last = load_checkpoint(out / "last.npz")
    assert last.train_state["counters"]["step"] == 30 and last.optimizer_state["t"] == 30
    assert last.config.hid_dim == 32 and last.config.out == str(out)


def test_cli_draws_loss_png_with_matplotlib(small_run):
    pytest.importorskip("matplotlib")
    out, _ = small_run
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_documents_every_flag():
    result = run("--help")
    assert result.returncode == 0
    for flag in ("--hid-dim", "--max-steps", "--resume", "--limit-train", "--no-lower", "--device",
                 "--log-every", "--schedule", "--label-smoothing"):
        assert flag in result.stdout


@pytest.mark.parametrize("args, fragments", [
    (["--hid-dim", "31"], ["enc_heads=8 does not divide hid_dim=31"]),
    (["--lr", "fast"], ["argument --lr: invalid float value"]),
    (["--src", "xx"], ["unknown language code 'xx'"]),
])
def test_bad_settings_exit_2(args, fragments, tmp_path):
    assert_one_line_error(run(*args, "--out", str(tmp_path / "x")), *fragments)
    assert not (tmp_path / "x").exists()       # no empty run folder left behind


# A machine without CuPy, made where CuPy is installed: `import cupy` fails once sys.modules
# holds None under its name
WITHOUT_CUPY = ("import runpy, sys; sys.modules['cupy'] = None; "
                "runpy.run_module('tinynmt.train', run_name='__main__', alter_sys=True)")


def test_cuda_without_cupy_exits_2(tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_CUPY, *TINY, *SMALL, "--device", "cuda",
                             "--out", str(tmp_path / "run")], cwd=ROOT, env=env(), capture_output=True,
                            text=True, timeout=120)
    assert_one_line_error(result, "CuPy is not installed", 'pip install -e ".[cuda12]"')
    assert not (tmp_path / "run").exists()


def test_cuda_without_a_usable_gpu_exits_2(tmp_path):
    try:
        cupy_module()
    except BackendError as exc:
        why = str(exc)                           # CuPy missing, or no CUDA device it can use
    else:
        pytest.skip("a CUDA device is usable here")
    result = run(*TINY, *SMALL, "--device", "cuda", "--out", str(tmp_path / "run"))
    assert_one_line_error(result, why)
    assert not (tmp_path / "run").exists()


def test_resume_errors_are_one_line(small_run, tmp_path):
    out, _ = small_run
    assert_one_line_error(run("--resume", str(tmp_path / "nowhere")), "no such checkpoint")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    data = (out / "last.npz").read_bytes()
    (truncated / "last.npz").write_bytes(data[:len(data) // 2])
    assert_one_line_error(run("--resume", str(truncated)), "truncated or corrupt")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    np.savez(foreign / "last.npz", weights=np.zeros(3))
    assert_one_line_error(run("--resume", str(foreign)), "not a tinynmt checkpoint")
    assert_one_line_error(run("--resume", str(out), "--lr", "0.1"), "--lr cannot change when resuming")
    assert_one_line_error(run(*TINY, "--out", str(out)), "already holds a run")


def test_resume_with_a_mismatched_vocabulary_exits_2(small_run, tmp_path):
    out, _ = small_run
    with np.load(out / "last.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"][0]))
    meta["src_vocab"]["itos"] = meta["src_vocab"]["itos"][:-5]       # 5 tokens fewer than the weights
    arrays["meta"] = np.array([json.dumps(meta)])
    np.savez(tmp_path / "last.npz", **arrays)
    assert_one_line_error(run("--resume", str(tmp_path)), "encoder.tok_embedding.weight", "has shape")


def test_non_finite_loss_exits_1_naming_the_step(tmp_path):
    result = run(*TINY, *SMALL, "--lr", "1e30", "--out", str(tmp_path))
    assert_one_line_error(result, "non-finite", "at step ", "no checkpoint had been saved", code=1)
    assert not (tmp_path / "last.npz").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_last_and_exits_130(tmp_path, sig):
    out = tmp_path / "run"
    proc = subprocess.Popen(command(*TINY, *SMALL, "--epochs", "1000", "--log-every", "2",
                                    "--out", str(out)),
                            cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:                 # wait until a few steps are done
            if re.match(r"\tstep +6 ", line) or time.monotonic() > deadline:
                break
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert f"python -m tinynmt.train --resume {out}" in stdout
    assert "Traceback" not in stderr
    ckpt = load_checkpoint(out / "last.npz")
    assert ckpt.train_state["counters"]["step"] >= 6
    resumed = run("--resume", str(out), "--max-steps", str(ckpt.train_state["counters"]["step"] + 2))
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(out / "last.npz").train_state["counters"]["step"] == \
        ckpt.train_state["counters"]["step"] + 2
