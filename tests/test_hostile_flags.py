"""Issue 22, family 5: every flag of every program, fed nonsense, answers with exit 0 or one
`error:` line and exit 2, never a traceback.

The test walks each program's own parser (as tests/test_docs.py's PARSERS does) and feeds every
flag and argument that takes a value nan, inf, -1, 0, a huge float, 2**31 - 1 and 10**30. A new
flag is covered without a new line here. The real program runs: its parser, its checks and,
where that is quick (translate, evaluate, export, average, plot), its work on a tiny model;
train and data run their parse and validation, then a stub instead of the training or the
corpus loading (their checks all happen before that point)."""
import argparse
import shutil
from types import SimpleNamespace

import pytest

from hostile_tools import make_run, status_of, write_lines
from tinynmt.data import get_tokenizer
from tinynmt.decoding import Translator
from tinynmt.programs import average, evaluate, export, plot, prepare, train, translate
from tinynmt.programs import data as data_main
from tinynmt.training.checkpoint import load_checkpoint

VALUES = ["nan", "inf", "-1", "0", "1e308", str(2**31 - 1), "1" + "0" * 30]
PROGRAMS = {"train": train, "translate": translate, "evaluate": evaluate, "export": export,
            "average": average, "plot": plot, "data": data_main, "prepare": prepare}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-flags")
    run = make_run(folder / "run")
    write_lines(folder / "src.de", ["ein mann schläft", "zwei kinder"])
    write_lines(folder / "ref.en", ["a man sleeps", "two children"])
    for split in ("train", "dev"):                     # a corpus of one's own, for prepare
        write_lines(folder / f"{split}.xx", ["a b c", "b c d", "c d e"])
        write_lines(folder / f"{split}.yy", ["x y", "y z", "z x"])
    write_lines(run / "metrics.jsonl", ['{"kind": "step", "step": 1, "loss": 2.0}'])
    try:
        export.export_safetensors(run, folder / "model.safetensors")
    except export.ExportError:          # no safetensors package: --from then fails in one line
        pass
    return folder


def command_line(program, flag, value, f):
    """An otherwise good command line for `program` with `flag value` (flag None: `value` is the
    positional argument)."""
    run = str(f / "run")
    importing = ["--from", str(f / "model.safetensors"), "--vocab-from", run, "--to", "i.npz"]
    flags, positionals = {
        "train": ([], []),
        "translate": (["--checkpoint", run], [] if flag == "--input" else ["hund"]),
        "evaluate": (["--checkpoint", run, "--src-file", str(f / "src.de"), "--ref-file", str(f / "ref.en")], []),
        "export": (importing if flag in ("--from", "--vocab-from", "--heads") else ["--checkpoint", run, "--to",
                                                                                   "o.safetensors"], []),
        "average": (["--out", "avg.npz"], [str(f / "run" / "best.npz")]),
        "plot": ([], [run]),
        "data": ([], []),
        "prepare": (["--train", str(f / "train"), "--valid", str(f / "dev"), "--src", "xx", "--trg", "yy",
                     "--min-freq", "1", "--out", "prepared"], []),
    }[program]
    if flag is None:
        return [*flags, value]
    if flag in flags:                                    # the value under test replaces the base's
        i = flags.index(flag)
        flags = flags[:i] + flags[i + 2:]
    return [*flags, flag, value, *positionals]


def flags_taking_values(parser):
    """(flag or None for a positional, the name of its type: int, float, ...) of every action
    that takes a value."""
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse.BooleanOptionalAction)) or action.nargs == 0:
            continue
        yield action.option_strings[0] if action.option_strings else None, getattr(action.type, "__name__", "str")


def must_refuse(kind, value):
    """Values no flag of this kind takes: nan and inf for a float, a negative int (every int flag
    is a count, a size or a seed)."""
    return (kind == "float" and value in ("nan", "inf")) or (kind == "int" and value == "-1")


CASES = [(name, *flag) for name, program in PROGRAMS.items() for flag in flags_taking_values(program.build_parser())]


def stub_the_work(monkeypatch):
    """train and data: everything up to the work, then a stub (a training run, the corpus)."""
    monkeypatch.setattr(train, "train", lambda config, should_stop, comm: SimpleNamespace(
        status="finished", step=0, run_dir=config.out))
    monkeypatch.setattr(data_main, "load_dataset", lambda config: SimpleNamespace(summary=lambda: ["stub"]))


@pytest.mark.parametrize("program, flag, kind", CASES, ids=[f"{p} {f or 'ARG'}" for p, f, _ in CASES])
def test_every_flag_fed_nonsense_is_fine_or_one_error_line(files, tmp_path, monkeypatch, capsys, program, flag, kind):
    monkeypatch.chdir(tmp_path)          # outputs named "nan", "-1", ... land here
    stub_the_work(monkeypatch)
    for value in VALUES:
        argv = command_line(program, flag, value, files)
        status = status_of(PROGRAMS[program].main, argv)
        err = capsys.readouterr().err
        lines = err.splitlines()
        assert "Traceback" not in err, (argv, err)
        assert status in ((2,) if must_refuse(kind, value) else (0, 2)), (argv, status, err)
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == (status == 2), (argv, err)
        assert all(line.startswith(("error: ", "warning: ")) for line in lines), (argv, err)
        for made in tmp_path.iterdir():                 # outputs of this value: the next starts afresh
            shutil.rmtree(made) if made.is_dir() else made.unlink()


def test_nan_and_inf_are_refused_as_they_are_parsed(files, monkeypatch, capsys):
    stub_the_work(monkeypatch)
    for value in ("nan", "inf", "1e400"):
        assert status_of(translate.main, ["--checkpoint", files / "run", "--lenpen", value, "hund"]) == 2
        assert capsys.readouterr().err == (f"error: argument --lenpen: lenpen must be a finite number, "
                                           f"got {float(value)} (see --help)\n")
    assert status_of(train.main, ["--lr", "inf"]) == 2
    assert capsys.readouterr().err == "error: argument --lr: lr must be a finite number, got inf (see --help)\n"
    assert status_of(train.main, ["--seed", "-1"]) == 2
    assert "seed must be in [0, 2**32), got -1" in capsys.readouterr().err


def test_a_model_too_big_for_memory_is_refused_before_any_work(monkeypatch, capsys):
    monkeypatch.setattr(train, "train", lambda *a, **k: pytest.fail("training started"))
    assert status_of(train.main, ["--hid-dim", "1000000", "--enc-heads", "1", "--dec-heads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the model needs at least ") and "GiB" in err and err.count("\n") == 1


def test_a_model_with_fewer_than_50_positions_decodes_by_default(files):
    ckpt = load_checkpoint(files / "run")                               # max_length 12
    translator = Translator(ckpt.model, ckpt.src_vocab, ckpt.trg_vocab, get_tokenizer("whitespace"))
    assert translator.max_steps == 12 and len(translator.translate(["hund"])) == 1
