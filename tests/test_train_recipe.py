"""The stronger recipe's training features: early stopping, selecting best.npz by validation
BLEU, averaging the last epochs, a joint vocabulary with tied embeddings, and validation
loss without label smoothing."""
import numpy as np
import pytest

from tinynmt.training.averaging import average_checkpoints
from tinynmt.programs.average import main as average_main
from tinynmt.training.checkpoint import CheckpointError, load_checkpoint
from tinynmt.training.config import Config
from tinynmt.data import read_multi30k
from tinynmt.decoding.metrics import evaluate_loss
from tinynmt.training.build import load_data
from tinynmt.training.loop import train
from tinynmt.training.trainer import Trainer

from tiny_runs import TINY, records



def test_patience_stops_when_validation_bleu_stops_improving(tmp_path):
    # lr so small the weights barely move: greedy outputs, and so BLEU, never improve
    config = Config(out=str(tmp_path), lr=1e-12, select_by="bleu", patience=2, **{**TINY, "epochs": 10})
    result = train(config)
    assert result.status == "early_stopped"
    epochs = records(tmp_path, "epoch")
    assert len(epochs) == 3 and [e["best"] for e in epochs] == [True, False, False]
    assert all(e["valid_bleu"] is not None for e in epochs)
    assert records(tmp_path, "early_stop")[0]["best_epoch"] == 1
    assert records(tmp_path, "test")[0]["checkpoint"] == "best.npz"     # scored all the same


def test_averaging_keeps_the_last_epochs_and_scores_the_better_checkpoint(tmp_path):
    config = Config(out=str(tmp_path), average_last=2, lr=3e-3, **TINY)
    result = train(config)
    assert result.status == "finished"
    assert sorted(p.name for p in tmp_path.glob("epoch*.npz")) == ["epoch002.npz", "epoch003.npz"]
    average = records(tmp_path, "average")[0]
    assert average["checkpoints"] == ["epoch002.npz", "epoch003.npz"]
    # the two checkpoints' validation losses recomputed from the files by tinynmt.evaluate
    val_de, val_en = read_multi30k("val", "de", "en")
    losses = {}
    for name in ("best.npz", "averaged.npz"):
        ckpt = load_checkpoint(tmp_path / name)
        losses[name] = evaluate_loss(ckpt.model, val_de[:32], val_en[:32], ckpt.src_vocab, ckpt.trg_vocab,
                                     ckpt.tokenizer, batch_size=32).loss
    assert average["valid_loss"] == pytest.approx(losses["averaged.npz"], abs=1e-5)
    chosen = "averaged.npz" if losses["averaged.npz"] < losses["best.npz"] else "best.npz"
    assert average["chosen"] == (chosen == "averaged.npz")
    assert records(tmp_path, "test")[0]["checkpoint"] == chosen
    a, b, mean = (load_checkpoint(tmp_path / name).model.state_dict()
                  for name in ("epoch002.npz", "epoch003.npz", "averaged.npz"))
    for name in mean:
        np.testing.assert_allclose(mean[name], (a[name].astype(np.float64) + b[name]) / 2,
                                   rtol=1e-6, atol=1e-7)


def test_average_cli_and_mismatched_checkpoints(tmp_path, capsys):
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    train(Config(out=str(run_a), average_last=2, **{**TINY, "epochs": 2}))
    train(Config(out=str(run_b), **{**TINY, "epochs": 1, "hid_dim": 16}))
    out = tmp_path / "avg.npz"
    assert average_main([str(run_a / "epoch001.npz"), str(run_a / "epoch002.npz"), "--out", str(out)]) == 0
    assert load_checkpoint(out).train_state["averaged"][0].endswith("epoch001.npz")
    assert average_main([str(run_a / "epoch001.npz"), str(run_b / "best.npz"), "--out", str(out)]) == 2
    assert "another model" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="no checkpoints"):
        average_checkpoints([], out)


def test_joint_vocabulary_and_tied_embeddings_train_and_reload(tmp_path):
    config = Config(out=str(tmp_path), tokenizer="bpe", bpe_merges=200, share_vocab=True,
                    tie_embeddings=True, min_freq=1, **{**TINY, "epochs": 1})
    train(config)
    ckpt = load_checkpoint(tmp_path)
    model = ckpt.model
    assert ckpt.src_vocab == ckpt.trg_vocab
    assert model.decoder.fc_out.weight is model.encoder.tok_embedding.weight
    assert model.decoder.tok_embedding.weight is model.encoder.tok_embedding.weight


def test_validation_loss_has_no_label_smoothing():
    smooth = Config(label_smoothing=0.3, **TINY)
    data = load_data(smooth)
    a = Trainer.create(smooth, data).evaluate(data.val.batches(batch_size=32))
    b = Trainer.create(smooth.replace(label_smoothing=0.0), data).evaluate(data.val.batches(batch_size=32))
    assert a == b and np.isfinite(a)


def test_the_english_to_german_preset_trains_with_the_new_options(tmp_path):
    small = dict(TINY, bpe_merges=200, epochs=1, max_steps=3, average_last=None)
    config = Config.from_preset("strong-ende", out=str(tmp_path), rdrop=1.0, attention_dropout=0.0,
                                activation_dropout=0.2, **small)
    assert train(config).status == "max_steps"
    ckpt = load_checkpoint(tmp_path)
    assert (ckpt.config.src, ckpt.config.trg, ckpt.config.rdrop) == ("en", "de", 1.0)
    assert ckpt.model.encoder.layers[0].positionwise_feedforward.dropout.p == 0.2
    english, german = read_multi30k("val", "en", "de")
    assert load_data(config).val.src_text[:2] == english[:2] != german[:2]


def test_a_time_budget_stops_at_an_epoch_end_and_no_score_test_leaves_the_test_alone(tmp_path):
    # a budget far under one epoch: the first epoch runs whole, then one more would pass it
    config = Config(out=str(tmp_path), max_minutes=1e-6, score_test=False, average_last=2,
                    **{**TINY, "epochs": 3})
    result = train(config)
    assert result.status == "max_minutes" and result.epoch == 1 and result.test_loss is None
    assert [e["epoch"] for e in records(tmp_path, "epoch")] == [1]
    stop = records(tmp_path, "max_minutes")[0]
    assert stop["epoch"] == 1 and stop["seconds"] > 0
    assert records(tmp_path, "test") == []                     # --no-score-test: test never read


def test_a_resumed_run_counts_its_earlier_epochs_against_the_budget(tmp_path):
    from tinynmt.training.run_folder import resume_config
    train(Config(out=str(tmp_path), max_minutes=1e-6, score_test=False, **{**TINY, "epochs": 3}))
    again = train(resume_config(tmp_path))                    # the budget is spent: no epoch runs
    assert again.status == "max_minutes" and again.epoch == 1
    assert len(records(tmp_path, "epoch")) == 1 and len(records(tmp_path, "max_minutes")) == 2
    more = train(resume_config(tmp_path, max_minutes=60.0))   # a larger budget goes on to the end
    assert more.status == "finished" and [e["epoch"] for e in records(tmp_path, "epoch")] == [1, 2, 3]


def test_a_generous_time_budget_changes_nothing(tmp_path):
    result = train(Config(out=str(tmp_path), max_minutes=60.0, **{**TINY, "epochs": 2}))
    assert result.status == "finished" and result.epoch == 2
    assert records(tmp_path, "max_minutes") == [] and len(records(tmp_path, "test")) == 1


def test_a_token_budget_validates_per_token_however_the_batches_are_cut():
    # Under a token budget a split is a few uneven batches: the mean of their means would move
    # with the cut; the loss per predicted token does not, and is what evaluate_loss reports.
    losses = []
    for budget in (300, 1000):
        config = Config(**{**TINY, "batch_size": None, "max_tokens": budget})
        data = load_data(config)
        trainer = Trainer.create(config, data)
        assert trainer.valid_loss_rule == trainer.counters.valid_loss_rule == "per_token"
        losses.append(trainer.evaluate(trainer.valid_batches))
        val = data.val
        result = evaluate_loss(trainer.model, val.src_text, val.trg_text, data.src_vocab, data.trg_vocab,
                               data.tokenizer, max_tokens=budget)
        assert result.loss == pytest.approx(result.token_nll) == pytest.approx(losses[-1], rel=1e-5)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    sentences = Trainer.create(Config(**TINY), data)
    assert sentences.valid_loss_rule == "batch_mean"             # the tutorial's mean of batch losses
    by_batch = [sentences.evaluate(val.batches(batch_size=b)) for b in (5, 32)]
    assert abs(by_batch[0] - by_batch[1]) > 1e-4


def test_a_run_saved_under_the_old_rule_measures_its_best_again(tmp_path):
    config = Config(**{**TINY, "batch_size": None, "max_tokens": 1000})
    trainer = Trainer.create(config, load_data(config))
    trainer.save(tmp_path / "best.npz", with_optimizer=False)
    c = trainer.counters
    c.valid_loss_rule, c.best_valid_loss = "batch_mean", 99.0     # as a run from before it kept them
    trainer.adopt_valid_loss_rule(tmp_path / "best.npz")
    assert c.valid_loss_rule == "per_token"
    assert c.best_valid_loss == pytest.approx(trainer.evaluate(trainer.valid_batches), rel=1e-6)
    c.best_valid_loss = 5.0
    trainer.adopt_valid_loss_rule(tmp_path / "best.npz")          # the same rule: nothing measured
    assert c.best_valid_loss == 5.0


def test_a_cooldown_ends_the_schedule_linearly_and_resumes_where_it_was(tmp_path):
    from tinynmt.training.run_folder import resume_config
    config = Config(out=str(tmp_path), schedule="inverse_sqrt", lr=1e-3, warmup=2, max_steps=8,
                    cooldown=4, score_test=False, **TINY)
    assert train(config, should_stop=lambda step: step >= 5).status == "interrupted"
    assert train(resume_config(tmp_path)).status == "max_steps"
    # warmup 2 then 1e-3 * sqrt(2 / step); the last 4 of 8 steps times 4/4, 3/4, 2/4, 1/4
    expected = [5e-4, 1e-3, 1e-3 * (2 / 3) ** 0.5, 1e-3 * (2 / 4) ** 0.5, 1e-3 * (2 / 5) ** 0.5,
                1e-3 * (2 / 6) ** 0.5 * 3 / 4, 1e-3 * (2 / 7) ** 0.5 * 2 / 4, 1e-3 * (2 / 8) ** 0.5 / 4]
    steps = records(tmp_path, "step")
    assert [r["step"] for r in steps] == list(range(1, 9))
    assert [r["lr"] for r in steps] == pytest.approx(expected, rel=1e-6)


def test_a_time_budget_that_cuts_a_cooldown_short_says_so(tmp_path, capsys):
    config = Config(out=str(tmp_path), max_minutes=1e-6, max_steps=15, cooldown=5, score_test=False,
                    **{**TINY, "epochs": 3})                    # 5 steps an epoch: stops at step 5
    assert train(config).status == "max_minutes"
    # fitted to the budget after epoch 1 (step 5), the cooldown would have ended at step 10
    assert "the --cooldown of the last 5 steps stops 5 steps short" in capsys.readouterr().out
    train(Config(out=str(tmp_path / "plain"), max_minutes=1e-6, score_test=False, **{**TINY, "epochs": 3}))
    assert "--cooldown" not in capsys.readouterr().out


def test_the_cooldown_ends_where_the_budget_will_stop_the_run():
    from tinynmt.optim import budget_end_step
    # 10 epochs of 80 s and 65 steps: a 100-minute budget holds 75 epochs, 4,875 steps
    assert budget_end_step(6000, [80] * 10, 650, 10_000, 1000, 10_000) == 4875
    assert budget_end_step(6000, [80] * 10, 650, 4000, 1000, 4000) == 4000    # max_steps first
    assert budget_end_step(6000, [40, 120] * 5, 650, 10_000, 1000, 10_000) == 4875   # the mean
    # the budget nearly spent: the cooldown begins now, at its full length
    assert budget_end_step(820, [80] * 10, 650, 10_000, 1000, 10_000) == 1650
    # once the cooldown has begun, its end stays whatever the epochs take
    assert budget_end_step(60, [80] * 10, 4000, 10_000, 1000, 4875) == 4875
    assert budget_end_step(6000, [80] * 10, 3875, 10_000, 1000, 4875) == 4875
    assert budget_end_step(6000, [0.0], 5, 100, 10, 100) == 100           # epochs timed at 0 s


def test_a_cooldown_fitted_to_the_time_budget_cools_to_0_and_stops_there(tmp_path, monkeypatch, capsys):
    from tinynmt.training.config import ConfigError
    from tinynmt.training.run_folder import resume_config
    from tinynmt.training.runlog import RunLog
    epoch_record = RunLog.epoch_record
    monkeypatch.setattr(RunLog, "epoch_record",                  # every epoch takes 6 s
                        lambda self, *a, **k: {**epoch_record(self, *a, **k), "epoch_time_s": 6.0})
    # 5 steps an epoch, 30 s: 5 epochs, 25 steps; the cooldown of 10 steps ends there, not at 100
    config = Config(out=str(tmp_path), max_minutes=0.5, max_steps=100, cooldown=10, lr=1e-3,
                    score_test=False, **{**TINY, "epochs": 10})
    result = train(config)
    assert result.status == "max_minutes" and result.step == 25 and result.epoch == 5
    assert [(r["step"], r["end_step"]) for r in records(tmp_path, "cooldown")] == [(15, 25)]
    lrs = [r["lr"] for r in records(tmp_path, "step")]
    assert lrs == pytest.approx([1e-3] * 15 + [1e-3 * k / 10 for k in range(10, 0, -1)], rel=1e-6)
    out = capsys.readouterr().out
    assert "from step 16 the rate falls linearly to 0 at step 25, where --max-minutes 0.5" in out
    assert "stopping at step 25 after epoch 5" in out and "fitted to --max-minutes 0.5 ends here" in out
    scored = train(resume_config(tmp_path, score_test=True))    # at its end: the test alone
    assert (scored.status, scored.step, len(records(tmp_path, "epoch"))) == ("max_minutes", 25, 5)
    assert [r["step"] for r in records(tmp_path, "test")] == [25]
    with pytest.raises(ConfigError, match="stopped at step 25, where its cooldown fitted to --max-minutes"):
        train(resume_config(tmp_path, score_test=True))
    more = train(resume_config(tmp_path, max_minutes=1.5, epochs=20, score_test=False))   # 15 epochs
    assert more.status == "max_minutes" and more.step == 75
    assert [(r["step"], r["end_step"]) for r in records(tmp_path, "cooldown")] == [(15, 25), (65, 75)]


def test_a_fitted_cooldown_that_ends_inside_an_epoch_says_so(tmp_path, monkeypatch, capsys):
    import tinynmt.training.trainer as trainer_module
    monkeypatch.setattr(trainer_module, "budget_end_step", lambda *args: 23)   # 5 steps an epoch
    config = Config(out=str(tmp_path), max_minutes=60.0, max_steps=100, cooldown=10, score_test=False,
                    **{**TINY, "epochs": 10})
    result = train(config)
    assert (result.status, result.step) == ("max_minutes", 23)
    assert [(e["epoch"], e["partial"]) for e in records(tmp_path, "epoch")][-2:] == [(4, False), (5, True)]
    stop = records(tmp_path, "max_minutes")[0]
    assert (stop["step"], stop["epoch"], stop["partial"]) == (23, 5, True)
    assert "stopping at step 23 after part of epoch 5" in capsys.readouterr().out
