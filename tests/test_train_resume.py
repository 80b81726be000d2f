"""train(): same seed, same losses; an interrupted and resumed run is the uninterrupted run;
a non-finite loss stops with the step named and leaves the last checkpoint alone."""
import hashlib
import json

import numpy as np
import pytest

from tinynmt.training.checkpoint import CheckpointError, load_checkpoint
from tinynmt.training.config import Config, ConfigError
from tinynmt.training.run_folder import resume_config
from tinynmt.training.loop import train
from tinynmt.training.trainer import Trainer, TrainingError

from tiny_runs import TINY, records



def step_losses(run_dir):
    return [(r["step"], r["loss"], r["grad_norm"]) for r in records(run_dir, "step")]


def epoch_losses(run_dir):
    return [(r["epoch"], r["step"], r["train_loss"], r["valid_loss"], r["partial"])
            for r in records(run_dir, "epoch")]


def arrays(path):
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files if k != "meta"}


def assert_same_arrays(path_a, path_b):
    a, b = arrays(path_a), arrays(path_b)
    assert a.keys() == b.keys() and "optim/m" in a
    for key in a:
        assert np.array_equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted 3-epoch run (15 steps)."""
    out = tmp_path_factory.mktemp("reference")
    result = train(Config(out=str(out), **TINY))
    return out, result


def test_a_run_finishes_with_its_files(reference):
    out, result = reference
    assert result.status == "finished" and result.step == 15 and result.epoch == 3
    assert [r[0] for r in step_losses(out)] == list(range(1, 16))
    assert [(e, s) for e, s, *_ in epoch_losses(out)] == [(1, 5), (2, 10), (3, 15)]
    best = min(r["valid_loss"] for r in records(out, "epoch"))
    assert result.best_valid_loss == best
    assert records(out, "test")[0]["test_loss"] == result.test_loss
    ckpt = load_checkpoint(out / "last.npz")
    assert ckpt.train_state["counters"]["step"] == 15 and ckpt.optimizer_state["t"] == 15
    assert load_checkpoint(out / "best.npz").optimizer_state is None
    assert json.loads((out / "config.json").read_text())["hid_dim"] == 32


def test_same_seed_same_losses_other_seed_other_losses(reference, tmp_path):
    out, _ = reference
    train(Config(out=str(tmp_path / "again"), **dict(TINY, epochs=1)))
    assert step_losses(tmp_path / "again") == step_losses(out)[:5]
    train(Config(out=str(tmp_path / "seed"), **dict(TINY, epochs=1, seed=99)))
    assert step_losses(tmp_path / "seed")[0] != step_losses(out)[0]


@pytest.mark.slow
@pytest.mark.parametrize("stop_at", [3, 5, 12])   # mid-epoch, at an epoch's last batch, later
def test_interrupted_then_resumed_is_the_uninterrupted_run(reference, tmp_path, stop_at):
    out, full = reference
    first = train(Config(out=str(tmp_path), **TINY), should_stop=lambda step: step == stop_at)
    assert first.status == "interrupted" and first.step == stop_at
    assert load_checkpoint(tmp_path / "last.npz").train_state["counters"]["step"] == stop_at
    second = train(resume_config(tmp_path))
    assert second.status == "finished" and second.step == 15
    assert step_losses(tmp_path) == step_losses(out)
    assert epoch_losses(tmp_path) == epoch_losses(out)
    assert second.test_loss == full.test_loss
    assert_same_arrays(tmp_path / "last.npz", out / "last.npz")


@pytest.mark.slow
def test_max_steps_then_resume_with_more_steps(reference, tmp_path):
    out, _ = reference
    cut = train(Config(out=str(tmp_path), **dict(TINY, max_steps=7)))
    assert cut.status == "max_steps" and cut.step == 7
    assert (tmp_path / "best.npz").exists() and (tmp_path / "last.npz").exists()
    assert epoch_losses(tmp_path)[-1][:2] == (2, 7) and epoch_losses(tmp_path)[-1][-1] is True
    with pytest.raises(ConfigError, match="already did 7 steps"):
        train(resume_config(tmp_path))
    train(resume_config(tmp_path, max_steps=None))
    assert step_losses(tmp_path) == step_losses(out)
    assert_same_arrays(tmp_path / "last.npz", out / "last.npz")


def test_resume_refuses_other_settings(reference, tmp_path):
    out, _ = reference
    with pytest.raises(ConfigError, match="--lr cannot change when resuming"):
        resume_config(out, lr=1.0)
    with pytest.raises(ConfigError, match="already finished 3 epochs"):
        train(resume_config(out))
    with pytest.raises(ConfigError, match="different hid_dim"):
        train(resume_config(out, epochs=4).replace(hid_dim=64, enc_heads=2))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(Config(out=str(out), **TINY))


def test_resume_with_a_vocabulary_the_data_does_not_give(reference, tmp_path):
    out, _ = reference
    (tmp_path / "last.npz").write_bytes((out / "last.npz").read_bytes())
    with np.load(tmp_path / "last.npz") as npz:
        saved = {k: npz[k] for k in npz.files}
    meta = json.loads(str(saved["meta"][0]))
    itos = meta["trg_vocab"]["itos"]
    itos[4], itos[5] = itos[5], itos[4]             # same size, other ids
    saved["meta"] = np.array([json.dumps(meta)])
    np.savez(tmp_path / "last.npz", **saved)
    with pytest.raises(CheckpointError, match="target vocabulary .* does not match the data"):
        train(resume_config(tmp_path, epochs=4))


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    saved, original_step = {}, Trainer.step

    def poisoned_step(self, idx):
        if self.counters.step == 7:                  # epoch 1 (steps 1-5) is saved by now
            saved["last"], saved["best"] = digest(tmp_path / "last.npz"), digest(tmp_path / "best.npz")
            self.model.decoder.fc_out.weight.data[...] = np.nan
        return original_step(self, idx)
    monkeypatch.setattr(Trainer, "step", poisoned_step)
    with pytest.raises(TrainingError) as info:
        train(Config(out=str(tmp_path), **dict(TINY, log_every=50)))
    message = str(info.value)
    assert "non-finite loss nan at step 8" in message and "from step 5 is untouched" in message
    assert digest(tmp_path / "last.npz") == saved["last"] and digest(tmp_path / "best.npz") == saved["best"]
    assert load_checkpoint(tmp_path / "last.npz").train_state["counters"]["step"] == 5


def test_crash_after_save_every_resumes_exactly(reference, tmp_path):
    out, _ = reference

    def crash(step):                                 # dies after step 9 is logged, unsaved
        if step == 9:
            raise RuntimeError("power cut")
        return False
    with pytest.raises(RuntimeError, match="power cut"):
        train(Config(out=str(tmp_path), **dict(TINY, save_every=4)), should_stop=crash)
    assert load_checkpoint(tmp_path / "last.npz").train_state["counters"]["step"] == 8
    assert step_losses(tmp_path)[-1][0] == 9          # logged past the checkpoint
    train(resume_config(tmp_path))
    assert step_losses(tmp_path) == step_losses(out)  # the log was cut back to step 8 first
    assert epoch_losses(tmp_path) == epoch_losses(out)
    assert_same_arrays(tmp_path / "last.npz", out / "last.npz")
