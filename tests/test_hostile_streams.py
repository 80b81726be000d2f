"""Issue 22, family 7: streams and disks. A closed stdout (`>&-`), a full one (`> /dev/full`), a
broken pipe (`| head -1`), a full disk under --output, an empty input file and a loss too large
for exp() each end in at most one line, with nothing half-written left behind.

These run the programs as processes: the file descriptors are what is being tested."""
import os
import resource
import signal

import pytest

from hostile_tools import assert_one_error_line, make_run, run_program, status_of, write_lines
from tinynmt.programs import evaluate, translate
from tinynmt.training.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-streams")
    make_run(folder / "run")
    write_lines(folder / "many.de", ["ein mann schläft im park"] * 200)
    write_lines(folder / "empty.de", [])
    return folder


def test_a_closed_stdout_is_one_line(files):
    for program, args in (("translate", ["--checkpoint", files / "run", "hund"]),
                          ("evaluate", ["--checkpoint", files / "run", "--src-file", files / "many.de",
                                        "--ref-file", files / "many.de"])):
        result = run_program(program, *args, stdout=None, before=lambda: os.close(1))
        assert result.returncode == 2, result.stderr
        assert_one_error_line(result.stderr.decode(), "standard output is closed")


def test_a_full_stdout_is_one_line(files):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "wb") as full:
        for program, args in (("translate", ["--checkpoint", files / "run", "--input", files / "many.de"]),
                              ("evaluate", ["--checkpoint", files / "run", "--src-file", files / "many.de",
                                            "--ref-file", files / "many.de"])):
            result = run_program(program, *args, stdout=full)
            assert result.returncode == 1, result.stderr
            assert_one_error_line(result.stderr.decode(), "cannot write standard output: No space left on device")


def test_a_broken_pipe_ends_quietly(files):
    for program, args in (("translate", ["--checkpoint", files / "run", "--input", files / "many.de"]),
                          ("evaluate", ["--checkpoint", files / "run", "--src-file", files / "many.de",
                                        "--ref-file", files / "many.de"])):
        read_end, write_end = os.pipe()
        os.close(read_end)                          # the reader is gone, as after `| head -1`
        try:
            result = run_program(program, *args, stdout=write_end)
        finally:
            os.close(write_end)
        assert (result.returncode, result.stderr.decode()) == (0, "")


def limit_file_size():
    """In the child: files may not grow past 1,000 bytes, and hitting that is an error, not a kill."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))


def test_a_full_disk_under_output_leaves_the_old_file_and_no_temporary(files, tmp_path):
    out = write_lines(tmp_path / "hyp.en", ["yesterday's translations"])
    result = run_program("translate", "--checkpoint", files / "run", "--input", files / "many.de",
                         "--output", out, before=limit_file_size)
    assert result.returncode == 1, result.stderr
    assert_one_error_line(result.stderr.decode(), f"cannot write {out}: File too large")
    pytest.importorskip("safetensors")
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"yesterday's export")
    result = run_program("export", "--checkpoint", files / "run", "--to", model, before=limit_file_size)
    assert result.returncode == 1, result.stderr
    assert_one_error_line(result.stderr.decode(), f"cannot write {model}: File too large")
    assert out.read_text() == "yesterday's translations\n" and model.read_bytes() == b"yesterday's export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyp.en", "model.safetensors"]


def test_an_empty_input_file(files, tmp_path, capsys):
    out = tmp_path / "hyp.en"
    assert status_of(translate.main, ["--checkpoint", files / "run", "--input", files / "empty.de",
                                      "--output", out]) == 0
    assert capsys.readouterr().err == f"warning: --input {files / 'empty.de'} is empty: nothing to translate\n"
    assert out.read_bytes() == b""
    assert status_of(evaluate.main, ["--checkpoint", files / "run", "--src-file", files / "empty.de",
                                     "--ref-file", files / "empty.de"]) == 2
    assert_one_error_line(capsys.readouterr().err, "holds no sentences: nothing to score")


def test_a_loss_too_large_for_exp_prints_an_infinite_perplexity(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    ckpt = load_checkpoint(run)
    ckpt.model.decoder.fc_out.bias.data[4] = 1e4         # every other token: log p ~ -1e4
    save_checkpoint(run / "best.npz", ckpt.model, ckpt.config, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer)
    src = write_lines(tmp_path / "src.de", ["ein mann"])
    ref = write_lines(tmp_path / "ref.en", ["two children play"])
    assert status_of(evaluate.main, ["--checkpoint", run, "--src-file", src, "--ref-file", ref]) == 0
    out = capsys.readouterr().out
    assert "| Test PPL:     inf |" in out and "PPL inf" in out, out

