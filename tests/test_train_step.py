"""train_step is the tutorial's step with two plug-ins (a loss function, a hook after backward);
the Trainer's counters are written by the Trainer alone and say what the loop reported; the
training library imports no program, and the run log not the trainer."""
import ast
import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from tinynmt import fast
from tinynmt.nn import CrossEntropyLoss, teacher_forced_loss
from tinynmt.optim import Adam, clip_grad_norm_
from tinynmt.training.build import load_data
from tinynmt.training.checkpoint import load_checkpoint
from tinynmt.training.config import Config
from tinynmt.training.loop import train
from tinynmt.training.step import train_step
from tinynmt.training.trainer import Trainer

from test_model import PAD, padded_batch, tiny_model, to_float64
from tiny_runs import TINY, records

TRAINING = Path(__file__).resolve().parents[1] / "tinynmt" / "training"


def float64_setup(seed=0):
    model = to_float64(tiny_model(1, dropout=0.0, seed=seed))
    return model, Adam(model.parameters(), lr=1e-2), CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)


def weights(model):
    return {name: np.array(p.data) for name, p in model.named_parameters()}


# ----- the step and its plug-ins

@pytest.mark.parametrize("tricks", ["plain", "fast"])
def test_the_default_step_is_the_tutorials_lines(rng, tricks):
    """Bit for bit on the plain path; with the speed corner (no logits for padding: sums in
    another order) equal to float64 rounding."""
    src, trg = padded_batch(rng)
    model, optimizer, criterion = float64_setup()
    with fast.plain() if tricks == "plain" else nullcontext():
        loss, norm = train_step(model, criterion, optimizer, src, trg, clip=0.5)
        twin, twin_optimizer, _ = float64_setup()          # the tutorial's train(), written out
        twin_optimizer.zero_grad()
        output, _ = twin(src, trg[:, :-1])
        twin_loss = criterion(output.reshape(-1, output.shape[-1]), trg[:, 1:].reshape(-1))
        twin_loss.backward()
        twin_norm = clip_grad_norm_(twin_optimizer.params, 0.5)
        twin_optimizer.step()
    rtol = 0 if tricks == "plain" else 1e-12
    np.testing.assert_allclose([float(loss), float(norm)], [float(twin_loss.data), float(twin_norm)], rtol=rtol)
    assert float(norm) > 0.5
    after, twin_after = weights(model), weights(twin)
    for name in after:
        np.testing.assert_allclose(after[name], twin_after[name], rtol=rtol, atol=rtol, err_msg=name)


def test_a_loss_function_plugs_in_and_its_loss_is_the_one_minimised(rng):
    src, trg = padded_batch(rng)
    calls = []

    def doubled(model, criterion, src_, trg_):
        calls.append((model, criterion, src_, trg_))
        return teacher_forced_loss(model, criterion, src_, trg_) * 2.0

    plain, plain_optimizer, criterion = float64_setup()
    loss, norm = train_step(plain, criterion, plain_optimizer, src, trg, clip=1e9)
    model, optimizer, _ = float64_setup()
    loss2, norm2 = train_step(model, criterion, optimizer, src, trg, clip=1e9, loss_fn=doubled)
    assert len(calls) == 1 and calls[0][0] is model and calls[0][1] is criterion
    assert calls[0][2] is src and calls[0][3] is trg
    # times two is exact in binary: the loss, every gradient and so their norm double exactly
    assert float(loss2) == 2 * float(loss) and float(norm2) == 2 * float(norm) > 0


def test_the_hook_after_backward_sees_the_gradients_before_clipping_and_can_change_them(rng):
    src, trg = padded_batch(rng)
    reference, _, criterion = float64_setup()
    teacher_forced_loss(reference, criterion, src, trg).backward()
    expected = {name: np.array(p.grad) for name, p in reference.named_parameters()}

    seen = []

    def record(optimizer):
        seen.append({name: np.array(p.grad) for name, p in model.named_parameters()})
        assert optimizer is optimizer_used
    model, optimizer_used, _ = float64_setup()
    train_step(model, criterion, optimizer_used, src, trg, clip=1e-3, after_backward=record)
    assert len(seen) == 1 and seen[0].keys() == expected.keys()
    for name, grad in expected.items():           # unclipped, though clip=1e-3 cut them afterwards
        np.testing.assert_array_equal(seen[0][name], grad, err_msg=name)
    assert max(np.abs(g).max() for g in expected.values()) > 1e-3

    def zero(optimizer):                           # the update then moves nothing
        for p in optimizer.params:
            p.grad[...] = 0
    model, optimizer, _ = float64_setup()
    before = weights(model)
    _, norm = train_step(model, criterion, optimizer, src, trg, clip=1.0, after_backward=zero)
    assert float(norm) == 0.0
    for name, value in weights(model).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_the_clipping_plugs_in(rng):
    src, trg = padded_batch(rng)
    calls = []

    def no_clipping(params, max_norm):
        calls.append((params, max_norm))
        return -1.0
    model, optimizer, criterion = float64_setup()
    _, norm = train_step(model, criterion, optimizer, src, trg, clip=1e-3, clip_grad_norm=no_clipping)
    assert norm == -1.0 and len(calls) == 1 and calls[0][0] is optimizer.params and calls[0][1] == 1e-3
    unclipped, unclipped_optimizer, _ = float64_setup()
    train_step(unclipped, criterion, unclipped_optimizer, src, trg, clip=1e9)
    for name, value in weights(unclipped).items():     # the same update as a clip that never bites
        np.testing.assert_array_equal(weights(model)[name], value, err_msg=name)


# ----- the counters: the Trainer's own, and what the loop reported

def test_record_epoch_keeps_the_best_and_counts_epochs_without_improvement():
    config = Config(**TINY)
    trainer = Trainer.create(config, load_data(config))

    def record(epoch, loss, best, partial=False):
        return {"epoch": epoch, "valid_loss": loss, "valid_bleu": None, "best": best, "partial": partial}
    for r in (record(1, 3.0, True), record(2, 3.5, False), record(3, 3.2, False, partial=True),
              record(3, 3.1, False)):
        trainer.record_epoch(r)
    c = trainer.counters
    assert (c.best_epoch, c.best_valid_loss, c.bad_epochs, len(c.history)) == (1, 3.0, 2, 4)
    trainer.record_epoch(record(4, 2.0, True))
    assert (c.best_epoch, c.best_valid_loss, c.bad_epochs, c.history[-1]["epoch"]) == (4, 2.0, 0, 4)


def test_the_counters_after_training_are_what_the_loop_reported(tmp_path):
    result = train(Config(out=str(tmp_path), lr=1.0, **TINY))   # so large that validation loss goes up and down
    epochs = records(tmp_path, "epoch")
    counters = load_checkpoint(tmp_path / "last.npz").train_state["counters"]
    reported = [{k: v for k, v in r.items() if k != "time"} for r in epochs]
    assert counters["history"] == reported == json.loads(json.dumps(result.history))
    losses = [r["valid_loss"] for r in epochs]
    best = losses.index(min(losses))                 # the first of the lowest: later ties are not better
    assert counters["best_epoch"] == best + 1 == epochs[best]["epoch"]
    assert counters["best_valid_loss"] == min(losses) == result.best_valid_loss
    assert counters["bad_epochs"] == len(losses) - 1 - best
    assert (counters["epoch"], counters["batch"], counters["step"]) == (3, 0, 15) == (result.epoch, 0, result.step)
    assert [r["best"] for r in epochs] == [i == 0 or losses[i] < min(losses[:i]) for i in range(3)]


def counter_writes(path):
    """Lines of a file that assign to, or append to, something reached through `counters` or `c`."""
    def through_counters(node):
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Attribute) and node.attr == "counters":
                return True
            node = node.value
        return isinstance(node, ast.Name) and node.id == "c"
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            targets = [t for target in targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("append", "extend", "pop", "clear", "update"):
            targets = [node.func.value]
        lines += [node.lineno for t in targets if isinstance(t, (ast.Attribute, ast.Subscript)) and through_counters(t)]
    return lines


@pytest.mark.parametrize("name", ["loop.py", "build.py", "runlog.py", "step.py"])
def test_no_one_but_the_trainer_writes_its_counters(name):
    assert counter_writes(TRAINING / name) == []
    assert counter_writes(TRAINING / "trainer.py")        # the detector finds the Trainer's own


def imported_modules(path):
    """The absolute module names a file of tinynmt/training imports."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "tinynmt.training" if node.level == 1 else "tinynmt" if node.level == 2 else ""
            module = ".".join(part for part in (base, node.module) if part)
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


def test_the_training_library_imports_no_program_and_the_run_log_not_the_trainer():
    files = sorted(TRAINING.glob("*.py"))
    assert len(files) > 8
    for path in files:
        programs = [m for m in imported_modules(path) if m.startswith("tinynmt.programs")]
        assert programs == [], f"{path.name} imports {programs}"
    assert "tinynmt.training.trainer" not in imported_modules(TRAINING / "runlog.py")
    assert "tinynmt.training.trainer" in imported_modules(TRAINING / "loop.py")   # the check sees imports
