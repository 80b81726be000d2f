"""Issue 22, family 1: outputs never destroy the user's files.

An output that is the same file as an input or a checkpoint (also through a symlink or a hard
link) is refused before anything opens; text outputs replace the old file only when the run
succeeds; the atomic replace writes regular files only, writes through a symlink and keeps
the file's mode. Every program is tried, through its own main()."""
import os
import stat

import numpy as np
import pytest

from hostile_tools import assert_one_error_line, make_run, status_of, write_lines
from tinynmt.programs import average, evaluate, export, translate
from tinynmt.programs import plot as plot_main
from tinynmt.training.checkpoint import load_checkpoint

LINES = ["ein mann schläft", "zwei kinder spielen im park"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("hostile-out") / "run")


@pytest.fixture
def text(tmp_path):
    return write_lines(tmp_path / "src.de", LINES), write_lines(tmp_path / "ref.en", ["a man", "two children"])


def alias(target, how, other):
    """A name for `target`: the path itself, or `other` made a symlink or a hard link to it."""
    if how == "same":
        return target
    (os.symlink if how == "symlink" else os.link)(target, other)
    return other


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_translate_output_naming_its_input_or_checkpoint_is_refused(run_dir, text, tmp_path, capsys, how):
    src = text[0]
    before = src.read_bytes()
    assert status_of(translate.main, ["--checkpoint", run_dir, "--input", src,
                                      "--output", alias(src, how, tmp_path / "hyp.en")]) == 2
    assert_one_error_line(capsys.readouterr().err, "is the same file as --input")
    assert src.read_bytes() == before
    ckpt = run_dir / "best.npz"
    weights = ckpt.read_bytes()
    for argv in (["--output", alias(ckpt, how, tmp_path / "out.txt")], ["--attention", ckpt]):
        assert status_of(translate.main, ["--checkpoint", run_dir, *argv, "hund"]) == 2
        assert_one_error_line(capsys.readouterr().err, "is the same file as --checkpoint")
    assert ckpt.read_bytes() == weights


def test_evaluate_export_average_and_plot_refuse_to_overwrite_what_they_read(run_dir, text, tmp_path, capsys):
    src, ref = text
    ckpt = run_dir / "best.npz"
    saved = {path: path.read_bytes() for path in (src, ref, ckpt)}
    cases = [(evaluate.main, ["--checkpoint", run_dir, "--src-file", src, "--ref-file", ref, "--output", ref]),
             (evaluate.main, ["--checkpoint", run_dir, "--src-file", src, "--ref-file", ref, "--output", ckpt]),
             (export.main, ["--checkpoint", run_dir, "--to", ckpt]),
             (export.main, ["--from", ckpt, "--vocab-from", ckpt, "--to", ckpt]),
             (average.main, ["--out", ckpt, ckpt, ckpt])]
    for main, argv in cases:
        assert status_of(main, argv) == 2, argv
        assert_one_error_line(capsys.readouterr().err, "is the same file as")
    assert {path: path.read_bytes() for path in saved} == saved
    pytest.importorskip("matplotlib")
    plotted = tmp_path / "plotted"
    plotted.mkdir()
    write_lines(plotted / "metrics.jsonl", ['{"kind": "step", "step": 1, "loss": 2.0}'])
    os.symlink("metrics.jsonl", plotted / "loss.png")                  # a link to its own input
    assert status_of(plot_main.main, [plotted]) == 2
    assert_one_error_line(capsys.readouterr().err, "is the same file as metrics.jsonl")
    assert (plotted / "metrics.jsonl").read_text().startswith('{"kind"')


def test_a_failing_run_leaves_an_existing_output_untouched(run_dir, text, tmp_path, capsys):
    src, ref = text
    out = write_lines(tmp_path / "hyp.en", ["the translations of yesterday"])
    short = write_lines(tmp_path / "short.en", ["one line"])
    failing = [(translate.main, ["--checkpoint", run_dir, "--input", tmp_path / "missing.de", "--output", out]),
               (translate.main, ["--checkpoint", run_dir, "--score-reference", "--input", src,
                                 "--reference", short, "--output", out]),
               (evaluate.main, ["--checkpoint", run_dir, "--src-file", src, "--ref-file", short, "--output", out])]
    for main, argv in failing:
        assert status_of(main, argv) == 2, argv
        assert_one_error_line(capsys.readouterr().err)
        assert out.read_text() == "the translations of yesterday\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyp.en", "ref.en", "short.en", "src.de"]  # no temp left
    assert status_of(translate.main, ["--checkpoint", run_dir, "--input", src, "--output", out]) == 0
    assert len(out.read_text().splitlines()) == len(LINES)


def test_replacing_keeps_the_mode_and_writes_through_a_symlink(run_dir, tmp_path, capsys):
    target = tmp_path / "models" / "model.safetensors"
    target.parent.mkdir()
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "latest.safetensors"
    os.symlink(target, link)
    pytest.importorskip("safetensors")
    assert status_of(export.main, ["--checkpoint", run_dir, "--to", link]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)      # the link stays a link
    assert target.read_bytes()[:8] != b"old" and stat.S_IMODE(target.stat().st_mode) == 0o640
    hyp = write_lines(tmp_path / "hyp.en", ["old"])
    os.chmod(hyp, 0o600)
    assert status_of(translate.main, ["--checkpoint", run_dir, "--output", hyp, "hund"]) == 0
    assert stat.S_IMODE(hyp.stat().st_mode) == 0o600 and hyp.read_text() != "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyp.en", "latest.safetensors", "models"]


def full_device(tmp_path):
    """A device like /dev/full to write to: as root, a private node where one can be made (code that
    replaces devices would replace the system's /dev/full), else /dev/full itself."""
    if os.geteuid() == 0:
        try:
            os.mknod(tmp_path / "full", 0o666 | stat.S_IFCHR, os.makedev(1, 7))
            return tmp_path / "full"
        except OSError:
            pass
    return "/dev/full"


@pytest.mark.parametrize("where", ["folder", "device", "pipe", "nowhere"])
def test_only_regular_files_are_replaced(run_dir, tmp_path, capsys, where):
    path = {"folder": tmp_path / "folder", "pipe": tmp_path / "fifo",
            "nowhere": tmp_path / "missing" / "out"}.get(where) or full_device(tmp_path)
    if where == "folder":
        path.mkdir()
    elif where == "pipe":
        os.mkfifo(path)
    for main, argv in [(export.main, ["--checkpoint", run_dir, "--to", path]),
                       (average.main, ["--out", path, run_dir / "best.npz"]),
                       (translate.main, ["--checkpoint", run_dir, "--output", path, "hund"])]:
        assert status_of(main, argv) == 2, argv
        assert_one_error_line(capsys.readouterr().err, {"folder": "it is a folder", "device": "not a regular file",
                                                        "pipe": "not a regular file", "nowhere": "no folder"}[where])
    kind = {"folder": stat.S_ISDIR, "device": stat.S_ISCHR, "pipe": stat.S_ISFIFO}.get(where)
    assert kind is None or kind(os.stat(path).st_mode)                 # still what it was


def test_the_average_written_is_the_mean_and_the_inputs_stay(run_dir, tmp_path):
    out = tmp_path / "avg.npz"
    before = (run_dir / "best.npz").read_bytes()
    assert status_of(average.main, ["--out", out, run_dir / "best.npz", run_dir / "best.npz"]) == 0
    one, mean = load_checkpoint(run_dir / "best.npz"), load_checkpoint(out)
    for name, array in one.model.state_dict().items():
        np.testing.assert_array_equal(mean.model.state_dict()[name], array)
    assert (run_dir / "best.npz").read_bytes() == before


def test_evaluate_refuses_to_overwrite_the_runs_own_corpus(tmp_path, capsys):
    for split in ("train", "dev", "test"):
        write_lines(tmp_path / f"{split}.xx", ["ein mann", "zwei kinder"])
        write_lines(tmp_path / f"{split}.yy", ["a man", "two children"])
    run = make_run(tmp_path / "run", src="xx", trg="yy", train=str(tmp_path / "train"),
                   valid=str(tmp_path / "dev"), test_prefix=str(tmp_path / "test"))
    for split, target in (([], "test.yy"), (["--split", "val"], "dev.xx")):
        assert status_of(evaluate.main, ["--checkpoint", run, *split, "--output", tmp_path / target]) == 2
        assert_one_error_line(capsys.readouterr().err, f"is the same file as the run's corpus {tmp_path / target}")
    assert (tmp_path / "test.yy").read_text() == "a man\ntwo children\n"
    assert status_of(evaluate.main, ["--checkpoint", run, "--output", tmp_path / "hyp.yy"]) == 0
