"""What the hostile-input tests (tests/test_hostile_*.py) share: a tiny checkpoint, text files,
and running a program the way a user does, in-process or as a process with its own fds."""
import os
import subprocess
import sys
from pathlib import Path

import tinynmt
from tinynmt.data import EOS_IDX, PAD_IDX, SPECIALS, Vocab, get_tokenizer
from tinynmt.nn import build_transformer
from tinynmt.training.checkpoint import save_checkpoint
from tinynmt.training.config import Config

ROOT = Path(tinynmt.__file__).resolve().parents[1]      # the tinynmt under test, for the children too
SRC_WORDS = "ein mann eine frau hund läuft schläft im park . zwei kinder spielen".split()
TRG_WORDS = "a man woman dog runs sleeps in the park . two children play".split()
TINY = dict(hid_dim=16, enc_layers=1, dec_layers=1, enc_heads=2, dec_heads=2, enc_pf_dim=24,
            dec_pf_dim=24, max_length=12)


def make_model(config):
    """A seeded random tiny model with its vocabularies (EOS bias raised: outputs end)."""
    src_vocab, trg_vocab = Vocab(SPECIALS + tuple(SRC_WORDS)), Vocab(SPECIALS + tuple(TRG_WORDS))
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, config, seed=config.seed)
    model.decoder.fc_out.bias.data[EOS_IDX] += 1.5
    return model, src_vocab, trg_vocab


def make_run(folder, **changes):
    """A run folder holding best.npz of a tiny random model; returns the folder."""
    config = Config(**dict(TINY, **changes))
    model, src_vocab, trg_vocab = make_model(config)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder / "best.npz", model, config, src_vocab, trg_vocab, get_tokenizer("whitespace"))
    return folder


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def status_of(main, argv):
    """main(argv)'s exit status, also when its parser exits (a flag refused as it is parsed)."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exit:
        return exit.code


def assert_one_error_line(err, *fragments):
    """stderr is one `error: ...` line holding every fragment, and no traceback."""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


def run_program(program, *args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, before=None, cwd=None):
    """`python -m tinynmt.<program> args` as a process -> CompletedProcess (text stderr);
    `before` runs in the child before Python starts (closing fds, setting limits)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", f"tinynmt.{program}", *map(str, args)], stdout=stdout,
                          stdin=stdin, stderr=subprocess.PIPE, env=env, cwd=cwd or ROOT, timeout=120,
                          preexec_fn=before)
