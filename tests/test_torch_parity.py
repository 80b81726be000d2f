"""Where PyTorch is installed: the tutorial's PyTorch model with tinynmt's weights gives the
same logits, loss and gradients, and torch.optim takes the same steps.

Legend: B batch, S source length, T target length, V vocabulary.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinynmt.autograd import no_grad  # noqa: E402
from tinynmt.nn import CrossEntropyLoss, ModelConfig, build_transformer  # noqa: E402
from tinynmt.optim import Adam, AdamW, clip_grad_norm_  # noqa: E402
from tinynmt.interop.torch_reference import build_torch_transformer, load_tinynmt_weights  # noqa: E402
from tolerance import adam_mismatches, gradient_mismatches, mismatch  # noqa: E402

PAD, SRC_V, TRG_V = 1, 13, 11
TINY = dict(hid_dim=16, max_length=10)


def tiny_pair(layers=2, dropout=0.0, seed=0):
    """A tinynmt model and the PyTorch tutorial model holding the same weights."""
    model = build_transformer(SRC_V, TRG_V, PAD, PAD, ModelConfig(
        enc_layers=layers, dec_layers=layers, enc_heads=2, dec_heads=2, enc_pf_dim=32, dec_pf_dim=32,
        enc_dropout=dropout, dec_dropout=dropout, **TINY), seed=seed)
    torch.manual_seed(seed)
    reference = build_torch_transformer(SRC_V, TRG_V, PAD, PAD, n_layers=layers, n_heads=2,
                                        pf_dim=32, dropout=dropout, **TINY)
    return model, load_tinynmt_weights(reference, model)


def padded_batch(seed=0):
    """src (3, 7), trg (3, 6) with padding in both, and one full-length row each."""
    rng = np.random.default_rng(seed)
    src = rng.integers(2, SRC_V, (3, 7))
    src[0, 4:] = PAD
    src[2, 6:] = PAD
    trg = rng.integers(2, TRG_V, (3, 6))
    trg[1, 3:] = PAD
    trg[2, 5:] = PAD
    return src, trg


def tinynmt_loss(model, src, trg, label_smoothing=0.0):
    logits, attention = model(src, trg[:, :-1])
    loss = CrossEntropyLoss(ignore_index=PAD, label_smoothing=label_smoothing)(
        logits.reshape(-1, TRG_V), trg[:, 1:].reshape(-1))
    return loss, logits, attention


def torch_loss(reference, src, trg, label_smoothing=0.0):
    src, trg = torch.from_numpy(src), torch.from_numpy(trg)
    logits, attention = reference(src, trg[:, :-1])
    loss = torch.nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=label_smoothing)(
        logits.reshape(-1, TRG_V), trg[:, 1:].reshape(-1))
    return loss, logits, attention


def assert_close(ours, theirs, name, rtol=1e-4):
    """Equal up to rtol of the larger array's largest entry (tests/tolerance.py)."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    message = mismatch(ours, theirs, name, rtol)
    assert message is None, message


def test_state_dict_keys_and_shapes_are_the_tutorials():
    model = build_transformer(9597, 7704, PAD, PAD)               # the tutorial's configuration
    reference = build_torch_transformer(9597, 7704, PAD, PAD)
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        assert value.shape == tuple(theirs[key].shape), key
    assert model.num_parameters() == sum(p.numel() for p in reference.parameters())


def test_weights_move_both_ways():
    model, reference = tiny_pair()
    for key, value in reference.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), model.state_dict()[key], err_msg=key)
    torch.manual_seed(7)
    other = build_torch_transformer(SRC_V, TRG_V, PAD, PAD, n_layers=2, n_heads=2, pf_dim=32,
                                    dropout=0.0, **TINY)
    model.load_state_dict({k: v.numpy() for k, v in other.state_dict().items()})
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key], value.numpy(), err_msg=key)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_same_logits_loss_and_gradients(label_smoothing):
    model, reference = tiny_pair()
    src, trg = padded_batch()
    loss, logits, attention = tinynmt_loss(model, src, trg, label_smoothing)
    loss.backward()
    t_loss, t_logits, t_attention = torch_loss(reference, src, trg, label_smoothing)
    t_loss.backward()
    assert_close(logits.data, t_logits, "logits")
    assert_close(attention.data, t_attention, "attention")
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-5)
    # each key bias's gradient is zero but for rounding noise: compared against its attention's
    # gradients (tests/tolerance.py), every other gradient against its own largest entry
    failures = gradient_mismatches({name: p.grad for name, p in model.named_parameters()},
                                   {name: p.grad.numpy() for name, p in reference.named_parameters()})
    assert not failures, "\n".join(failures)


def test_eval_mode_matches_torch_eval_with_dropout_in_the_model():
    model, reference = tiny_pair(dropout=0.1)
    model.eval()
    reference.eval()
    src, trg = padded_batch(seed=3)
    with no_grad():
        logits, _ = model(src, trg)
    with torch.no_grad():
        t_logits, _ = reference(torch.from_numpy(src), torch.from_numpy(trg))
    assert_close(logits.data, t_logits, "logits")


# ----- optimizers: five steps with clipping, parameters compared after each

@pytest.mark.parametrize("ours, theirs, weight_decay", [
    (Adam, torch.optim.Adam, 0.0),
    (Adam, torch.optim.Adam, 0.01),
    (AdamW, torch.optim.AdamW, 0.01),
])
def test_optimizer_steps_with_clipping_match_torch(ours, theirs, weight_decay):
    model, reference = tiny_pair(layers=1)
    lr, betas, eps = 1e-2, (0.9, 0.98), 1e-9
    optimizer = ours(model.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    t_optimizer = theirs(reference.parameters(), lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay)
    t_params = dict(reference.named_parameters())
    start = {name: param.data.copy() for name, param in model.named_parameters()}
    for step in range(5):
        src, trg = padded_batch(seed=step)
        optimizer.zero_grad()
        loss, _, _ = tinynmt_loss(model, src, trg)
        loss.backward()
        norm = clip_grad_norm_(model.parameters(), 1.0)
        t_optimizer.zero_grad()
        t_loss, _, _ = torch_loss(reference, src, trg)
        t_loss.backward()
        t_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
        if step == 0:     # what Adam divides by first: the clipped gradient and L2 decay's share
            l2 = weight_decay if ours is Adam else 0.0            # AdamW decays outside it
            first_grads = [{n: p.grad + l2 * p.data for n, p in model.named_parameters()},
                           {n: (p.grad + l2 * p).detach().numpy() for n, p in t_params.items()}]
        optimizer.step()
        t_optimizer.step()
        assert float(norm) == pytest.approx(t_norm.item(), rel=1e-4)
        assert float(norm) > 1.0                                  # clipping was active
        assert loss.item() == pytest.approx(t_loss.item(), rel=1e-4)
        # where a first gradient is noise (a key bias without L2 decay) or near eps, Adam's steps
        # are the noise's: bounded by Adam's largest move (tests/tolerance.py)
        failures = adam_mismatches({n: p.data for n, p in model.named_parameters()},
                                   {n: p.detach().numpy() for n, p in t_params.items()}, start,
                                   first_grads, lr, step + 1, betas, eps)
        assert not failures, f"after step {step + 1}:\n" + "\n".join(failures)
