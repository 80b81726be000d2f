"""R-Drop (--rdrop ALPHA): the symmetric KL term (formula, gradcheck, per-token weighting, the
fairseq criterion's value), the loss without dropout equal to plain training's, a fixed-mask
gradcheck of the whole loss, and a tiny run whose loss goes down.

Legend: B batch, T target length, N target positions, V vocabulary.
"""
import json

import numpy as np
import pytest

from tinynmt.autograd import Tensor, gradcheck
from tinynmt.backend import Generator, to_numpy
from tinynmt.training.config import Config, ConfigError
from tinynmt.nn import CrossEntropyLoss, set_dropout_generator, teacher_forced_loss
from tinynmt.optim import Adam
from tinynmt.training.loop import train
from tinynmt.training.rdrop import rdrop_loss, symmetric_kl
from tinynmt.training.step import train_step
from tinynmt.training.trainer import make_loss

from test_model import PAD, padded_batch, tiny_model, to_float64
from test_nn_layers import FixedUniforms
from tiny_runs import TINY, records


def numpy_symmetric_kl(z1, z2, keep):
    """The same in plain float64 NumPy: ½(KL(p1‖p2) + KL(p2‖p1)) averaged over the kept rows."""
    def log_softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    lp1, lp2 = log_softmax(z1), log_softmax(z2)
    kl_12 = (np.exp(lp1) * (lp1 - lp2)).sum(-1)
    kl_21 = (np.exp(lp2) * (lp2 - lp1)).sum(-1)
    return (0.5 * (kl_12 + kl_21))[keep].mean()


def logits_pair(xp, rng, n=5, v=4):
    return (Tensor(xp.asarray(rng.standard_normal((n, v)) * 2), requires_grad=True),
            Tensor(xp.asarray(rng.standard_normal((n, v)) * 2), requires_grad=True))


# ----- the KL term

def test_symmetric_kl_matches_the_formula_and_is_0_for_equal_inputs(xp, rng):
    z1, z2 = logits_pair(xp, rng)
    keep = np.array([True, True, False, True, False])
    got = float(to_numpy(symmetric_kl(z1, z2, keep).data))
    assert got == pytest.approx(numpy_symmetric_kl(to_numpy(z1.data), to_numpy(z2.data), keep), rel=1e-12)
    assert got > 0
    assert float(to_numpy(symmetric_kl(z1, z1, keep).data)) == 0.0
    assert float(to_numpy(symmetric_kl(z1, z2, np.zeros(5, bool)).data)) == 0.0   # nothing kept


def test_symmetric_kl_gradchecks_in_both_inputs(xp, rng):
    z1, z2 = logits_pair(xp, rng)
    keep = np.array([True, False, True, True, True])
    gradcheck(lambda a, b: symmetric_kl(a, b, keep), [z1, z2])             # the full Jacobian
    z1.grad = None
    symmetric_kl(z1, z2, keep).backward()
    assert np.all(to_numpy(z1.grad)[1] == 0)                            # a pad position: no gradient


def test_the_kl_is_a_per_token_mean_so_rank_shares_add_up_to_the_whole(rng):
    # data parallel: each rank's term weighted by its share of kept tokens sums to the global one
    z1, z2 = logits_pair(np, rng, n=9, v=6)
    keep = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1], bool)
    whole = float(symmetric_kl(z1, z2, keep).data)
    parts = [slice(0, 4), slice(4, 9)]
    shares = [keep[p].sum() / keep.sum() for p in parts]
    summed = sum(share * float(symmetric_kl(z1[p], z2[p], keep[p]).data) for share, p in zip(shares, parts))
    assert summed == pytest.approx(whole, rel=1e-12)


def test_the_loss_is_fairseqs_rdrop_criterion_halved():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    n, v, alpha, smoothing = 6, 7, 5.0, 0.1
    logits = rng.standard_normal((2 * n, v))                             # copy 1's rows, then copy 2's
    target = np.tile(rng.integers(2, v, n), 2)
    target[[1, 4, n + 1, n + 4]] = PAD
    ours = CrossEntropyLoss(ignore_index=PAD, label_smoothing=smoothing)(Tensor(logits), target)
    ours = ours + symmetric_kl(Tensor(logits[:n]), Tensor(logits[n:]), target[:n] != PAD) * (alpha / 2)
    # fairseq's label_smoothed_cross_entropy_with_rdrop: sums over both copies, divided by the
    # tokens of one copy (its sample_size), with the KL of log-probs against probs both ways
    lprobs = torch.log_softmax(torch.from_numpy(logits), -1)
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target),
                                           ignore_index=PAD, label_smoothing=smoothing, reduction="sum")
    p, q = lprobs[:n], lprobs[n:]
    pad = torch.from_numpy(target[:n] == PAD)[:, None]
    p_loss = torch.nn.functional.kl_div(p, q.exp(), reduction="none").masked_fill(pad, 0).sum()
    q_loss = torch.nn.functional.kl_div(q, p.exp(), reduction="none").masked_fill(pad, 0).sum()
    fairseq = (ce + alpha * (p_loss + q_loss) / 2) / int((target[:n] != PAD).sum())
    assert float(ours.data) == pytest.approx(float(fairseq) / 2, rel=1e-10)


# ----- the loss of a model

def test_without_dropout_the_loss_and_gradients_are_plain_trainings(rng):
    criterion = CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)
    src, trg = padded_batch(rng)
    grads = []
    for loss_of in (lambda m: teacher_forced_loss(m, criterion, src, trg),
                    lambda m: rdrop_loss(m, criterion, src, trg, alpha=5.0)):
        model = to_float64(tiny_model(1, dropout=0.0))
        loss = loss_of(model)
        loss.backward()
        grads.append((float(loss.data), {name: p.grad for name, p in model.named_parameters()}))
    (plain, plain_grads), (rdrop, rdrop_grads) = grads
    assert rdrop == pytest.approx(plain, rel=1e-12)
    for name, grad in plain_grads.items():
        np.testing.assert_allclose(rdrop_grads[name], grad, rtol=1e-9, atol=1e-13, err_msg=name)


def test_with_dropout_the_two_copies_differ_and_alpha_weighs_half_their_kl(rng):
    criterion = CrossEntropyLoss(ignore_index=PAD)
    src, trg = padded_batch(rng)
    model = tiny_model(1, dropout=0.3)

    def loss(alpha):
        set_dropout_generator(model, Generator(5))                      # the same masks each time
        return float(rdrop_loss(model, criterion, src, trg, alpha).data)
    set_dropout_generator(model, Generator(5))
    output, _ = model(np.concatenate([src, src]), np.concatenate([trg, trg])[:, :-1])   # (2B, T-1, V)
    logits = output.reshape(-1, output.shape[-1])
    n = logits.shape[0] // 2
    kl = float(symmetric_kl(logits[:n], logits[n:], trg[:, 1:].reshape(-1) != PAD).data)
    assert kl > 1e-4                                                    # different dropout masks
    assert loss(2.0) - loss(0.0) == pytest.approx(kl, rel=1e-4)


def test_the_whole_loss_gradchecks_with_fixed_masks(rng):
    model = to_float64(tiny_model(1, dropout=0.2))
    set_dropout_generator(model, FixedUniforms(np))                     # rows of copy 1 and 2 differ
    criterion = CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)
    src, trg = padded_batch(rng)
    for name in ("decoder.fc_out.weight", "encoder.layers.0.self_attention.fc_q.weight"):
        param = dict(model.named_parameters())[name]
        gradcheck(lambda *_: rdrop_loss(model, criterion, src, trg, alpha=3.0), [param],
                  max_full=0, n_directions=3)


# ----- training

def test_train_step_with_rdrop_and_no_dropout_takes_the_plain_step(rng):
    src, trg = padded_batch(rng)
    after = []
    for rdrop in (0.0, 1.0):             # the loss function a run with --rdrop RDROP steps with
        model = to_float64(tiny_model(1, dropout=0.0))
        optimizer = Adam(model.parameters(), lr=1e-2)
        criterion = CrossEntropyLoss(ignore_index=PAD, label_smoothing=0.1)
        loss_fn = make_loss(Config(rdrop=rdrop))
        assert (loss_fn is teacher_forced_loss) == (rdrop == 0.0)
        loss, norm = train_step(model, criterion, optimizer, src, trg, 1.0, loss_fn=loss_fn)
        weights = np.concatenate([p.data.ravel() for p in model.parameters()])
        after.append((float(loss), float(norm), weights))
    assert after[1][0] == pytest.approx(after[0][0], rel=1e-12)
    assert after[1][1] == pytest.approx(after[0][1], rel=1e-9)
    np.testing.assert_allclose(after[1][2], after[0][2], rtol=1e-9, atol=1e-12)


def test_the_flag_and_a_tiny_run_with_rdrop_lowers_its_loss(tmp_path):
    with pytest.raises(ConfigError, match="rdrop must be >= 0"):
        Config(rdrop=-1.0)
    assert Config().rdrop == 0.0 and Config.from_dict({}) == Config()   # older files: off
    train(Config(out=str(tmp_path), rdrop=1.0, lr=3e-3, **TINY))
    losses = [r["train_loss"] for r in records(tmp_path, "epoch")]
    assert len(losses) == 3 and losses[2] < losses[0]
    assert json.loads((tmp_path / "config.json").read_text())["rdrop"] == 1.0
