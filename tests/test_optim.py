"""Optimizers, gradient clipping and learning-rate schedules, against the formulas they state."""
import math

import numpy as np
import pytest

from tinynmt.autograd import Tensor
from tinynmt.nn import CrossEntropyLoss, Linear, ModelConfig, Module, Parameter, build_transformer
from tinynmt.optim import (SCHEDULES, Adam, AdamW, clip_grad_norm_, constant_lr, shared_buffer, inverse_sqrt_lr)


# ----- schedules

def test_constant_schedule_is_the_base_rate_at_every_step():
    assert SCHEDULES["constant"] is constant_lr
    assert all(constant_lr(step, 5e-4) == 5e-4 for step in (0, 1, 10, 10**6))
    assert constant_lr(7, 5e-4, warmup=100) == 5e-4


def test_inverse_sqrt_warms_up_linearly_then_decays_as_one_over_sqrt():
    assert SCHEDULES["inverse_sqrt"] is inverse_sqrt_lr
    base, warmup = 1e-3, 400
    for step in (1, 2, 100, 399):
        assert inverse_sqrt_lr(step, base, warmup) == pytest.approx(base * step / warmup)
    assert inverse_sqrt_lr(warmup, base, warmup) == pytest.approx(base)
    for step in (401, 1600, 40000):
        assert inverse_sqrt_lr(step, base, warmup) == pytest.approx(base * math.sqrt(warmup / step))
    # four times the steps, half the rate
    assert inverse_sqrt_lr(4 * 1600, base, warmup) == pytest.approx(inverse_sqrt_lr(1600, base, warmup) / 2)
    assert inverse_sqrt_lr(0, base, warmup) == inverse_sqrt_lr(1, base, warmup) > 0
    rates = [inverse_sqrt_lr(s, base, warmup) for s in range(1, 2000)]
    assert max(rates) == pytest.approx(base) and rates.index(max(rates)) == warmup - 1


@pytest.mark.parametrize("warmup", [0, -5])
def test_inverse_sqrt_needs_a_positive_warmup(warmup):
    with pytest.raises(ValueError, match="warmup"):
        inverse_sqrt_lr(10, 1e-3, warmup)


# ----- gradient clipping

def params_with_grads(rng, *shapes, scale=1.0):
    params = []
    for shape in shapes:
        p = Parameter(rng.standard_normal(shape).astype(np.float32))
        p.grad = (scale * rng.standard_normal(shape)).astype(np.float32)
        params.append(p)
    return params


def global_norm(grads):
    return np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads))


def test_clip_grad_norm_returns_the_global_norm_and_scales_to_max_norm(rng):
    params = params_with_grads(rng, (3, 4), (5,), (2, 2, 2), scale=3.0)
    before = [p.grad.copy() for p in params]
    norm = clip_grad_norm_(params, 1.0)
    assert float(norm) == pytest.approx(global_norm(before), rel=1e-6)
    assert float(norm) > 1.0
    after = [p.grad for p in params]
    assert global_norm(after) == pytest.approx(1.0, rel=1e-5)
    coef = 1.0 / (float(norm) + 1e-6)
    for a, b in zip(after, before):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b * coef, rtol=1e-6)        # one factor for all


def test_clip_grad_norm_leaves_small_gradients_alone(rng):
    params = params_with_grads(rng, (3, 4), (5,), scale=0.01)
    before = [p.grad.copy() for p in params]
    norm = clip_grad_norm_(params, 1.0)
    assert float(norm) == pytest.approx(global_norm(before), rel=1e-6) and float(norm) < 1.0
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.grad, b)


def test_clip_grad_norm_skips_parameters_without_gradients(rng):
    params = params_with_grads(rng, (4,), (6,), scale=5.0)
    params.append(Parameter(np.ones(3, dtype=np.float32)))        # grad None
    norm = clip_grad_norm_(params, 2.0)
    assert params[2].grad is None
    assert global_norm([p.grad for p in params[:2]]) == pytest.approx(2.0, rel=1e-5)
    assert float(norm) > 2.0
    assert float(clip_grad_norm_([params[2]], 1.0)) == 0.0


def adam_with_grads(rng, *shapes, scale=3.0):
    """Parameters and an Adam over them, their .grad (views of Adam's flat buffer) filled."""
    params = [Parameter(rng.standard_normal(shape).astype(np.float32)) for shape in shapes]
    optimizer = Adam(params)
    optimizer.zero_grad()
    for p in params:
        p.grad[...] = scale * rng.standard_normal(p.shape)
    return params, optimizer


def test_clip_grad_norm_sees_adams_flat_buffer_only_when_the_grads_fill_it(rng):
    params, optimizer = adam_with_grads(rng, (3, 4), (5,), (2, 2))
    assert shared_buffer([p.grad for p in params]) is optimizer.flat_grad
    assert shared_buffer([p.grad for p in params[:2]]) is None          # a subset
    params[1].grad = params[1].grad.copy()                              # one grad replaced
    assert shared_buffer([p.grad for p in params]) is None


def test_clip_grad_norm_on_the_flat_buffer_matches_per_parameter_clipping(rng):
    params, optimizer = adam_with_grads(rng, (3, 4), (5,), (2, 2, 2))
    before = [p.grad.copy() for p in params]
    loose = params_with_grads(rng, (3, 4), (5,), (2, 2, 2))            # the same grads, not views
    for p, g in zip(loose, before):
        p.grad = g.copy()
    norm, loose_norm = clip_grad_norm_(params, 1.0), clip_grad_norm_(loose, 1.0)
    assert float(norm) == pytest.approx(global_norm(before), rel=1e-6)
    assert float(norm) == pytest.approx(float(loose_norm), rel=1e-6)
    for p, q in zip(params, loose):
        assert p.grad.base is optimizer.flat_grad                        # scaled in place
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-6)
    assert global_norm(optimizer.flat_grad) == pytest.approx(1.0, rel=1e-5)


# ----- Adam and AdamW against their pseudocode

class Quadratic(Module):
    """loss = sum((A x + b - y)^2): smooth, with gradients of different sizes per parameter."""

    def __init__(self, rng):
        super().__init__()
        self.fc = Linear(4, 3, generator=rng)
        self.scale = Parameter(rng.standard_normal(3).astype(np.float32))

    def loss(self, x, y):
        d = self.fc(x) * self.scale - y
        return (d * d).sum()


def quadratic_data(rng):
    """Inputs (8, 4) and targets (8, 3) for Quadratic."""
    return (Tensor(rng.standard_normal((8, 4)).astype(np.float32)),
            Tensor(rng.standard_normal((8, 3)).astype(np.float32)))


def quadratic_steps(model, optimizer, x, y, steps):
    """`steps` rounds of zero_grad, backward and step."""
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(x, y).backward()
        optimizer.step()


def reference_adam(params, grads, state, lr, betas, eps, weight_decay, decoupled):
    """One step of the docstring's algorithm, in float64, per parameter."""
    beta1, beta2 = betas
    state["t"] += 1
    t = state["t"]
    out = []
    for i, (p, g) in enumerate(zip(params, grads)):
        m, v = state.setdefault(("m", i), np.zeros_like(p)), state.setdefault(("v", i), np.zeros_like(p))
        if weight_decay and not decoupled:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        if weight_decay and decoupled:
            p = p * (1 - lr * weight_decay)
        out.append(p - lr * m_hat / (np.sqrt(v_hat) + eps))
        state["m", i], state["v", i] = m, v
    return out


@pytest.mark.parametrize("cls, weight_decay", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.1)])
def test_adam_follows_its_pseudocode(rng, cls, weight_decay):
    model = Quadratic(rng)
    x, y = quadratic_data(rng)
    lr, betas, eps = 0.05, (0.8, 0.99), 1e-6
    optimizer = cls(model.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    expected = [p.data.astype(np.float64) for p in model.parameters()]
    state = {"t": 0}
    for step in range(4):
        optimizer.zero_grad()
        model.loss(x, y).backward()
        grads = [p.grad.astype(np.float64).copy() for p in model.parameters()]
        optimizer.step()
        expected = reference_adam(expected, grads, state, lr, betas, eps, weight_decay,
                                  decoupled=cls is AdamW)
        for (name, p), e in zip(model.named_parameters(), expected):
            assert p.dtype == np.float32, name
            np.testing.assert_allclose(p.data, e, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} after step {step + 1}")
        # reset the reference to the float32 values, so rounding does not pile up
        expected = [p.data.astype(np.float64) for p in model.parameters()]


def test_adamw_defaults_to_decoupled_decay_of_point_01():
    p = Parameter(np.ones(3, dtype=np.float32))
    optimizer = AdamW([p], lr=0.1)
    assert optimizer.weight_decay == 0.01
    p.grad = np.zeros(3, dtype=np.float32)
    optimizer.step()                           # no gradient: only the decay moves it
    np.testing.assert_allclose(p.data, 1 - 0.1 * 0.01, rtol=1e-7)


def test_step_leaves_the_gradients_as_backward_made_them(rng):
    model = Quadratic(rng)
    optimizer = Adam(model.parameters(), lr=0.01, weight_decay=0.5)
    x, y = quadratic_data(rng)
    optimizer.zero_grad()
    model.loss(x, y).backward()
    grads = [p.grad.copy() for p in model.parameters()]
    optimizer.step()
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)


def test_parameters_become_float32_views_of_one_buffer_and_stay_so(rng):
    model = Quadratic(rng)
    values = [p.data.copy() for p in model.parameters()]
    optimizer = Adam(model.parameters(), lr=0.01, weight_decay=0.01)
    for p, v in zip(model.parameters(), values):
        np.testing.assert_array_equal(p.data, v)               # same values, now in the buffer
        assert np.shares_memory(p.data, optimizer.flat_param)
    x, y = quadratic_data(rng)
    quadratic_steps(model, optimizer, x, y, 3)
    assert optimizer.flat_param.dtype == optimizer.m.dtype == optimizer.v.dtype == np.float32
    for p in model.parameters():
        assert p.dtype == np.float32 and np.shares_memory(p.data, optimizer.flat_param)
    # load_state_dict copies in place, so the optimizer keeps training the loaded values
    state = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    np.testing.assert_array_equal(optimizer.flat_param, 0)


def test_grads_left_by_module_zero_grad_are_gathered_too(rng):
    """Module.zero_grad sets .grad to None; backward then makes fresh arrays, which step reads."""
    model = Quadratic(rng)
    a = Adam(model.parameters(), lr=0.1)
    twin = Quadratic(np.random.default_rng(1234))
    twin.load_state_dict(model.state_dict())
    b = Adam(twin.parameters(), lr=0.1)
    x, y = quadratic_data(rng)
    quadratic_steps(model, a, x, y, 2)                  # grads are views of a's buffer
    for _ in range(2):
        twin.zero_grad()                                # grads are None ...
        twin.loss(x, y).backward()                      # ... then arrays of their own
        assert not any(np.shares_memory(p.grad, b.flat_grad) for p in twin.parameters())
        b.step()
    np.testing.assert_array_equal(a.flat_param, b.flat_param)


def test_an_empty_parameter_list_is_refused():
    with pytest.raises(ValueError, match="no parameters"):
        Adam([])


# ----- resuming

PAD = 1


def tiny_transformer(seed):
    return build_transformer(10, 9, PAD, PAD, ModelConfig(
        hid_dim=16, enc_layers=1, dec_layers=1, enc_heads=2, dec_heads=2, enc_pf_dim=32, dec_pf_dim=32,
        enc_dropout=0.0, dec_dropout=0.0, max_length=8), seed=seed)


def train_steps(model, optimizer, batches):
    criterion = CrossEntropyLoss(ignore_index=PAD)
    for src, trg in batches:
        logits, _ = model(src, trg[:, :-1])
        loss = criterion(logits.reshape(-1, 9), trg[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()


def test_adam_state_dict_round_trip_continues_identically(rng):
    batches = [(rng.integers(2, 10, (4, 5)), rng.integers(2, 9, (4, 6))) for _ in range(5)]
    model = tiny_transformer(seed=0)
    optimizer = Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    train_steps(model, optimizer, batches[:3])
    model_state, optimizer_state = model.state_dict(), optimizer.state_dict()
    assert optimizer_state["t"] == 3
    assert isinstance(optimizer_state["m"], np.ndarray) and optimizer_state["m"].dtype == np.float32
    m_saved = optimizer_state["m"].copy()
    train_steps(model, optimizer, batches[3:])
    np.testing.assert_array_equal(optimizer_state["m"], m_saved)    # the snapshot was a copy

    resumed = tiny_transformer(seed=1)                               # other weights to start
    resumed_optimizer = Adam(resumed.parameters(), lr=0.5)           # other hyper-parameters
    resumed.load_state_dict(model_state)
    resumed_optimizer.load_state_dict(optimizer_state)
    assert resumed_optimizer.lr == 1e-2 and resumed_optimizer.weight_decay == 1e-3
    train_steps(resumed, resumed_optimizer, batches[3:])
    assert resumed_optimizer.t == optimizer.t == 5
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(resumed_optimizer.m, optimizer.m)
    np.testing.assert_array_equal(resumed_optimizer.v, optimizer.v)


def test_adam_load_state_dict_refuses_another_models_state(rng):
    small = Adam(Quadratic(rng).parameters())
    big = Adam(tiny_transformer(0).parameters())
    with pytest.raises(ValueError, match="optimizer state holds"):
        small.load_state_dict(big.state_dict())
