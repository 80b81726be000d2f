"""Checkpoints: a bit-exact round trip, atomic saves, and one-line errors for bad files."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinynmt.backend import Generator
from tinynmt.training.checkpoint import (CheckpointError, load_checkpoint, read_config, resolve_checkpoint, save_checkpoint)
from tinynmt.training.config import Config
from tinynmt.data import PAD_IDX, Vocab, get_tokenizer
from tinynmt.nn import CrossEntropyLoss, build_transformer, set_dropout_generator
from tinynmt.optim import Adam

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hid_dim=16, enc_layers=1, dec_layers=1, enc_heads=2, dec_heads=2, enc_pf_dim=32,
            dec_pf_dim=32, max_length=20)


def vocab(words):
    return Vocab(["<unk>", "<pad>", "<sos>", "<eos>", *words])


@pytest.fixture
def trained(tmp_path):
    """A tiny model, Adam and a dropout generator after two steps, saved to tmp_path/ckpt.npz."""
    config = Config(**TINY)
    src, trg = vocab(["a", "b", "c"]), vocab(["x", "y", "z", "w"])
    model = build_transformer(len(src), len(trg), PAD_IDX, PAD_IDX, config, seed=config.seed)
    generator = Generator(7)
    set_dropout_generator(model, generator)
    optimizer = Adam(model.parameters(), lr=1e-2)
    ids = np.array([[2, 4, 5, 3], [2, 6, 3, 1]])
    for _ in range(2):
        out, _ = model(ids, ids[:, :-1])
        loss = CrossEntropyLoss(ignore_index=PAD_IDX)(out.reshape(-1, len(trg)), ids[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    state = {"step": 2, "rng": generator.get_state(), "note": "ünïcode"}
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, model, config, src, trg, get_tokenizer("whitespace"), optimizer, state)
    return dict(path=path, model=model, optimizer=optimizer, generator=generator, config=config,
                src=src, trg=trg)


def test_round_trip_is_bit_exact(trained):
    ckpt = load_checkpoint(trained["path"])
    saved, loaded = trained["model"].state_dict(), ckpt.model.state_dict()
    assert saved.keys() == loaded.keys()
    for name in saved:
        assert loaded[name].dtype == saved[name].dtype
        assert np.array_equal(loaded[name], saved[name]), name
    adam = trained["optimizer"].state_dict()
    assert np.array_equal(ckpt.optimizer_state["m"], adam["m"])
    assert np.array_equal(ckpt.optimizer_state["v"], adam["v"])
    assert ckpt.optimizer_state["t"] == adam["t"] == 2
    assert ckpt.config == trained["config"]
    assert ckpt.src_vocab == trained["src"] and ckpt.trg_vocab == trained["trg"]
    assert ckpt.tokenizer == get_tokenizer("whitespace")
    assert ckpt.train_state["note"] == "ünïcode" and not ckpt.model.training
    restored = Generator(0)
    restored.set_state(ckpt.train_state["rng"])
    assert np.array_equal(restored.random(100), trained["generator"].random(100))


def test_optimizer_state_loads_back_into_adam(trained):
    ckpt = load_checkpoint(trained["path"])
    optimizer = Adam(ckpt.model.parameters(), lr=0.5)
    optimizer.load_state_dict(ckpt.optimizer_state)
    assert optimizer.t == 2 and optimizer.lr == 1e-2
    assert np.array_equal(optimizer.state_dict()["m"], trained["optimizer"].state_dict()["m"])


def test_without_optimizer_and_read_config(trained, tmp_path):
    path = tmp_path / "weights.npz"
    save_checkpoint(path, trained["model"], trained["config"], trained["src"], trained["trg"],
                    get_tokenizer("unicode", lower=False))
    ckpt = load_checkpoint(path)
    assert ckpt.optimizer_state is None and ckpt.train_state is None
    assert ckpt.tokenizer == get_tokenizer("unicode", lower=False)
    assert read_config(path) == trained["config"]


def test_resolve_checkpoint(trained, tmp_path):
    assert resolve_checkpoint(trained["path"]) == trained["path"]
    with pytest.raises(CheckpointError, match="holds no best.npz"):
        resolve_checkpoint(tmp_path)
    trained["path"].rename(tmp_path / "best.npz")
    assert resolve_checkpoint(tmp_path) == tmp_path / "best.npz"
    assert load_checkpoint(tmp_path).path == tmp_path / "best.npz"


def one_line_error(path):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def rewrite(path, change):
    """Load a checkpoint's arrays and meta, let change(arrays, meta) edit them, save with np.savez."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"][0]))
    change(arrays, meta)
    arrays["meta"] = np.array([json.dumps(meta)])
    np.savez(path, **arrays)


def test_missing_path(tmp_path):
    assert "no such checkpoint" in one_line_error(tmp_path / "nope.npz")


@pytest.mark.parametrize("keep", [0.5, 0.98, 100])
def test_truncated_file(trained, keep):
    data = trained["path"].read_bytes()
    trained["path"].write_bytes(data[:int(len(data) * keep)] if keep < 1 else data[:keep])
    assert "not a readable .npz checkpoint" in one_line_error(trained["path"])


def test_foreign_files(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello\n")
    assert "not a readable .npz" in one_line_error(text)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    assert "single .npy array" in one_line_error(npy)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    assert "no meta record" in one_line_error(other)
    np.savez(other, meta=np.array(["{not json"]))
    assert "not JSON" in one_line_error(other)
    np.savez(other, meta=np.array([json.dumps({"format": "something.else"})]))
    assert "not a tinynmt checkpoint" in one_line_error(other)


def test_vocabulary_that_does_not_match_the_weights(trained):
    rewrite(trained["path"], lambda a, meta: meta["trg_vocab"]["itos"].append("extra"))
    message = one_line_error(trained["path"])
    assert "decoder.tok_embedding.weight" in message and "(8, 16)" in message and "(9, 16)" in message


def test_config_that_does_not_match_the_weights(trained):
    rewrite(trained["path"], lambda a, meta: meta["config"].update(hid_dim=32))
    assert "has shape" in one_line_error(trained["path"])


def test_missing_weight_and_bad_metadata(trained):
    rewrite(trained["path"], lambda a, meta: a.pop("model/decoder.fc_out.bias"))
    assert "lacks tensor decoder.fc_out.bias" in one_line_error(trained["path"])
    rewrite(trained["path"], lambda a, meta: meta["config"].update(colour="red"))
    assert "unknown config key(s): colour" in one_line_error(trained["path"])


def test_missing_config_keys_take_defaults(trained):
    rewrite(trained["path"], lambda a, meta: meta["config"].pop("label_smoothing"))
    assert load_checkpoint(trained["path"]).config.label_smoothing == 0.0


def test_failed_save_keeps_the_old_file(trained, monkeypatch):
    before = trained["path"].read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK partial")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(trained["path"], trained["model"], trained["config"], trained["src"],
                        trained["trg"], get_tokenizer("whitespace"))
    assert trained["path"].read_bytes() == before
    assert [p.name for p in trained["path"].parent.iterdir()] == ["ckpt.npz"]  # no temp file left


SAVE_FOREVER = """
import sys
from tinynmt.training.checkpoint import save_checkpoint
from tinynmt.training.config import Config
from tinynmt.data import Vocab, get_tokenizer
from tinynmt.nn import build_transformer
config = Config(hid_dim=64, enc_layers=2, dec_layers=2)
v = Vocab(["<unk>", "<pad>", "<sos>", "<eos>"] + [f"w{i}" for i in range(3000)])
model = build_transformer(len(v), len(v), 1, 1, config, seed=config.seed)
save_checkpoint(sys.argv[1], model, config, v, v, get_tokenizer("whitespace"))
print("saved", flush=True)
while True:
    save_checkpoint(sys.argv[1], model, config, v, v, get_tokenizer("whitespace"))
"""


@pytest.mark.parametrize("delay", [0.02, 0.07, 0.15])
def test_kill_9_during_saves_never_leaves_a_broken_checkpoint(tmp_path, delay):
    path = tmp_path / "last.npz"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(path)], env=env,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline() == "saved\n"
            load_checkpoint(path)          # a reader during the saves sees a whole file
            time.sleep(delay)              # then kill it somewhere inside a later save
        finally:
            proc.send_signal(signal.SIGKILL)
    assert load_checkpoint(path).config.hid_dim == 64
