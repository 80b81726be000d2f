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
    """Equal up to rtol of the larger array's largest entry."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    scale = max(np.abs(theirs).max(), np.abs(ours).max(), 1e-30)
    err = np.abs(ours - theirs).max()
    assert err <= rtol * scale, f"{name}: max error {err:.3g} vs scale {scale:.3g}"


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
    grads = {name: p.grad.numpy() for name, p in reference.named_parameters()}
    largest = max(np.abs(g).max() for g in grads.values())
    for name, param in model.named_parameters():
        if name.endswith("fc_k.bias"):
            # zero in exact arithmetic (softmax ignores a per-query constant, and q . b_k is
            # one), so both sides hold only rounding noise: compare against the whole model
            assert np.abs(param.grad).max() <= 1e-5 * largest, name
            assert np.abs(grads[name]).max() <= 1e-5 * largest, name
            continue
        assert_close(param.grad, grads[name], name)


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

def skip_noise(name):
    """fc_k.bias has gradient zero in exact arithmetic, so Adam (which divides by the gradient's
    size) turns both sides' rounding noise into steps of about lr in unrelated directions. The
    bias cannot change the output, so it is left out of the comparison."""
    return name.endswith("fc_k.bias")


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
    for step in range(5):
        src, trg = padded_batch(seed=step)
        optimizer.zero_grad()
        loss, _, _ = tinynmt_loss(model, src, trg)
        loss.backward()
        norm = clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        t_optimizer.zero_grad()
        t_loss, _, _ = torch_loss(reference, src, trg)
        t_loss.backward()
        t_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
        t_optimizer.step()
        assert float(norm) == pytest.approx(t_norm.item(), rel=1e-4)
        assert float(norm) > 1.0                                  # clipping was active
        assert loss.item() == pytest.approx(t_loss.item(), rel=1e-4)
        for name, param in model.named_parameters():
            if not skip_noise(name):
                assert_close(param.data, t_params[name], f"{name} after step {step + 1}")
