"""Issue 22, family 3: every state a crash or a signal can leave in a run folder is finished by one
documented command, `python -m tinynmt.train --resume RUN` (with a larger --epochs to go on):
the run it gives is the run that was not interrupted (same seed, same data, same losses)."""
import json

import pytest

from tiny_runs import TINY
from tinynmt.training.config import Config, ConfigError
from tinynmt.training.loop import train
from tinynmt.training.run_folder import resume_config
from tinynmt.training.trainer import Trainer

RUN = dict(TINY, epochs=2, average_last=2)     # 2 epochs of 5 steps; the last two epochs averaged


class Crash(Exception):
    """What a power cut looks like to the code: it stops between two lines."""


def scored(run_dir):
    """The test records of metrics.jsonl, without their clock time."""
    records = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    return [{k: v for k, v in r.items() if k != "time"} for r in records if r["kind"] == "test"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The uninterrupted run: what every finished one must equal."""
    run_dir = tmp_path_factory.mktemp("clean") / "run"
    result = train(Config(**RUN, out=str(run_dir)))
    assert result.status == "finished"
    return result, scored(run_dir)[-1]


def resume(run_dir, **overrides):
    return train(resume_config(run_dir, **overrides))


def test_a_finished_averaged_run_goes_on_with_more_epochs(clean, tmp_path):
    run_dir = tmp_path / "run"
    train(Config(**RUN, out=str(run_dir)))
    result = resume(run_dir, epochs=3)                   # what "already finished 2 epochs" suggests
    assert result.status == "finished" and result.epoch == 3
    assert scored(run_dir)[-1]["step"] == 15 and (run_dir / "averaged.npz").is_file()


def test_a_signal_during_the_last_validation_is_finished_by_resume(clean, tmp_path, monkeypatch):
    run_dir, flag = tmp_path / "run", []
    validate = Trainer.validate

    def validate_then_signal(self, *args, **kwargs):
        if self.counters.epoch == RUN["epochs"] - 1 and not args:       # the last epoch's own validation
            flag.append("SIGINT")
        return validate(self, *args, **kwargs)
    monkeypatch.setattr(Trainer, "validate", validate_then_signal)
    assert train(Config(**RUN, out=str(run_dir)), should_stop=lambda step: bool(flag)).status == "interrupted"
    monkeypatch.setattr(Trainer, "validate", validate)
    result = resume(run_dir)                             # no epoch left: average and score the test
    assert result.status == "finished" and result.test_loss == clean[0].test_loss
    assert scored(run_dir)[-1] == clean[1]


@pytest.mark.parametrize("crash_at", ["epoch1-last", "average", "test"])
def test_a_crash_anywhere_after_a_checkpoint_is_finished_by_resume(clean, tmp_path, monkeypatch, crash_at):
    """epoch1-last: between best.npz and the first last.npz (a folder with best.npz alone);
    average / test: after the last epoch's last.npz, before the run's end."""
    run_dir = tmp_path / "run"
    save, score = Trainer.save, Trainer.evaluate

    def save_or_crash(self, path, *args, **kwargs):
        if crash_at == "epoch1-last" and path.name == "last.npz" and self.counters.step == 5:
            raise Crash
        return save(self, path, *args, **kwargs)

    def evaluate_or_crash(self, batches, model=None, comm=None):
        if (crash_at == "average" and model is not None and batches is self.valid_batches
                or crash_at == "test" and batches is self.test_batches):
            raise Crash
        return score(self, batches, model, comm)
    monkeypatch.setattr(Trainer, "save", save_or_crash)
    monkeypatch.setattr(Trainer, "evaluate", evaluate_or_crash)
    with pytest.raises(Crash):
        train(Config(**RUN, out=str(run_dir)))
    monkeypatch.setattr(Trainer, "save", save)
    monkeypatch.setattr(Trainer, "evaluate", score)
    result = resume(run_dir)
    assert result.status == "finished" and result.test_loss == clean[0].test_loss
    assert scored(run_dir)[-1] == clean[1]


@pytest.mark.parametrize("crash_step", [2, 7])
def test_a_kill_between_checkpoints_resumes_from_the_one_before(clean, tmp_path, monkeypatch, crash_step):
    """Step 2: before any checkpoint (config.json and metrics.jsonl alone); step 7: two steps into
    the last epoch (last.npz of the first epoch's end)."""
    run_dir = tmp_path / "run"
    step = Trainer.step

    def step_or_crash(self, idx):
        if self.counters.step == crash_step:
            raise Crash
        return step(self, idx)
    monkeypatch.setattr(Trainer, "step", step_or_crash)
    with pytest.raises(Crash):
        train(Config(**RUN, out=str(run_dir)))
    monkeypatch.setattr(Trainer, "step", step)
    with pytest.raises(ConfigError, match=f"already holds a run .*--resume {run_dir}"):
        train(Config(**RUN, out=str(run_dir)))           # a new run would mix its records with these
    result = resume(run_dir)
    assert result.status == "finished" and result.test_loss == clean[0].test_loss
    assert scored(run_dir)[-1] == clean[1]
