"""Optimizers, gradient clipping and learning-rate schedules, against the formulas they state.

The plain Adam and clip_grad_norm_ here; the flat ones of tinynmt/fast against these in
tests/test_flat_adam.py (the pseudocode tests below run both).
"""
import numpy as np
import pytest

from tinynmt.autograd import Tensor
from tinynmt.nn import CrossEntropyLoss, Linear, ModelConfig, Module, Parameter, build_transformer
from tinynmt.optim import (SCHEDULES, Adam, AdamW, FlatAdam, FlatAdamW, clip_grad_norm_, constant_lr,
                           cooldown_factor, inverse_sqrt_lr)


# ----- schedules (rates written out by hand, not recomputed by the code under test)

def test_constant_schedule_is_the_base_rate_at_every_step():
    constant = SCHEDULES["constant"]                     # as the trainer looks it up
    for base in (5e-4, 1e-3, 0.25):
        assert [constant(step, base) for step in (0, 1, 2, 10, 4000, 10**6)] == [base] * 6
    assert [constant(step, 5e-4, warmup=100) for step in (1, 50, 100, 101)] == [5e-4] * 4
    assert [constant_lr(step, 1e-3) for step in (1, 7)] == [1e-3, 1e-3]


def test_inverse_sqrt_warms_up_linearly_then_decays_as_one_over_sqrt():
    schedule = SCHEDULES["inverse_sqrt"]
    base, warmup = 1e-3, 400
    # warmup: base * step / 400; after it: base * sqrt(400 / step)
    expected = {1: 2.5e-6, 2: 5e-6, 100: 2.5e-4, 200: 5e-4, 399: 9.975e-4, 400: 1e-3,
                1600: 5e-4, 6400: 2.5e-4, 40000: 1e-4}
    for step, rate in expected.items():
        assert schedule(step, base, warmup) == pytest.approx(rate, rel=1e-12), step
    assert schedule(0, base, warmup) == pytest.approx(2.5e-6)    # step 0 counts as step 1
    rates = [inverse_sqrt_lr(s, base, warmup) for s in range(1, 2000)]
    assert max(rates) == pytest.approx(base) and rates.index(max(rates)) == warmup - 1
    assert inverse_sqrt_lr(4000, 5e-4) == pytest.approx(5e-4)     # the default warmup: 4000


def test_inverse_sqrt_warms_up_from_an_initial_rate():
    schedule = SCHEDULES["inverse_sqrt"]
    # fairseq's --warmup-init-lr 1e-7 --lr 5e-3 --warmup-updates 2000: a line from 1e-7 to 5e-3
    expected = {1: 1e-7 + 4.9999e-3 / 2000, 1000: 1e-7 + 4.9999e-3 / 2, 2000: 5e-3, 8000: 2.5e-3}
    for step, rate in expected.items():
        assert schedule(step, 5e-3, 2000, 1e-7) == pytest.approx(rate, rel=1e-12), step
    assert schedule(5, 1e-3, 10, 0.0) == schedule(5, 1e-3, 10) == pytest.approx(5e-4)
    assert SCHEDULES["constant"](3, 1e-3, 10, 1e-7) == 1e-3          # constant ignores warmup


@pytest.mark.parametrize("warmup", [0, -5])
def test_inverse_sqrt_needs_a_positive_warmup(warmup):
    with pytest.raises(ValueError, match="warmup"):
        inverse_sqrt_lr(10, 1e-3, warmup)


def test_the_schedules_are_the_two_the_flag_offers():
    assert sorted(SCHEDULES) == ["constant", "inverse_sqrt"]


def test_cooldown_falls_linearly_over_the_last_steps():
    # 10 steps, the last 4 cooled: 1 ... 1, then 4/4, 3/4, 2/4, 1/4 (no step at rate 0)
    factors = [cooldown_factor(step, 10, 4) for step in range(1, 11)]
    assert factors == [1.0] * 6 + [1.0, 0.75, 0.5, 0.25]
    assert cooldown_factor(11, 10, 4) == cooldown_factor(50, 10, 4) == 0.25      # past the end: its last
    assert [cooldown_factor(3, 10, 0), cooldown_factor(3, None, 0)] == [1.0, 1.0]  # none asked
    assert [cooldown_factor(s, 3, 3) for s in (1, 2, 3)] == pytest.approx([1.0, 2 / 3, 1 / 3])


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


@pytest.mark.parametrize("cls, weight_decay", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.1),
                                               (FlatAdam, 0.0), (FlatAdam, 0.1), (FlatAdamW, 0.1)])
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
                                  decoupled=cls in (AdamW, FlatAdamW))
        for (name, p), e in zip(model.named_parameters(), expected):
            assert p.dtype == np.float32, name
            np.testing.assert_allclose(p.data, e, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} after step {step + 1}")
        # reset the reference to the float32 values, so rounding does not pile up
        expected = [p.data.astype(np.float64) for p in model.parameters()]


@pytest.mark.parametrize("cls", [Adam, FlatAdam])
def test_a_parameter_without_gradient_counts_as_a_zero_gradient(cls):
    p = Parameter(np.array([1.0, -1.0], dtype=np.float32))
    optimizer = cls([p], lr=0.1, betas=(0.5, 0.75))
    p.grad = np.array([2.0, 4.0], dtype=np.float32)
    optimizer.step()                           # t = 1: each moves by lr against its gradient
    np.testing.assert_allclose(p.data, [0.9, -1.1], rtol=1e-6)
    p.grad = None
    optimizer.step()                           # t = 2, g = 0: m = 0.25 g1, v = 0.1875 g1^2
    # m_hat = 0.25 g1 / 0.75, v_hat = 0.1875 g1^2 / 0.4375: the step is lr * 0.5092 sign(g1)
    step = 0.1 * (0.25 / 0.75) / np.sqrt(0.1875 / 0.4375)
    np.testing.assert_allclose(p.data, [0.9 - step, -1.1 - step], rtol=1e-5)


@pytest.mark.parametrize("cls", [AdamW, FlatAdamW])
def test_adamw_defaults_to_decoupled_decay_of_point_01(cls):
    p = Parameter(np.ones(3, dtype=np.float32))
    optimizer = cls([p], lr=0.1)
    assert optimizer.weight_decay == 0.01
    p.grad = np.zeros(3, dtype=np.float32)
    optimizer.step()                           # no gradient: only the decay moves it
    np.testing.assert_allclose(p.data, 1 - 0.1 * 0.01, rtol=1e-7)


@pytest.mark.parametrize("cls", [Adam, AdamW, FlatAdam, FlatAdamW])
def test_step_leaves_the_gradients_as_backward_made_them(rng, cls):
    model = Quadratic(rng)
    optimizer = cls(model.parameters(), lr=0.01, weight_decay=0.5)
    x, y = quadratic_data(rng)
    optimizer.zero_grad()
    model.loss(x, y).backward()
    grads = [p.grad.copy() for p in model.parameters()]
    optimizer.step()
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("cls", [Adam, AdamW, FlatAdam, FlatAdamW])
def test_float64_hyper_parameters_leave_every_array_float32(rng, cls):
    """NumPy 2 turns float32 * np.float64 into float64; the update must not let that in."""
    model = Quadratic(rng)
    optimizer = cls(model.parameters(), lr=np.float64(0.01), betas=(np.float64(0.9), np.float64(0.99)),
                    eps=np.float64(1e-8), weight_decay=np.float64(0.01))
    x, y = quadratic_data(rng)
    quadratic_steps(model, optimizer, x, y, 2)
    state = optimizer.state_dict()
    assert state["m"].dtype == state["v"].dtype == np.float32
    for name, p in model.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name


@pytest.mark.parametrize("cls", [Adam, FlatAdam])
def test_an_empty_parameter_list_is_refused(cls):
    with pytest.raises(ValueError, match="no parameters"):
        cls([])


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


@pytest.mark.parametrize("cls", [Adam, FlatAdam])
def test_adam_state_dict_round_trip_continues_identically(rng, cls):
    batches = [(rng.integers(2, 10, (4, 5)), rng.integers(2, 9, (4, 6))) for _ in range(5)]
    model = tiny_transformer(seed=0)
    optimizer = cls(model.parameters(), lr=1e-2, weight_decay=1e-3)
    train_steps(model, optimizer, batches[:3])
    model_state, optimizer_state = model.state_dict(), optimizer.state_dict()
    assert optimizer_state["t"] == 3
    n = model.num_parameters()
    for key in ("m", "v"):     # the checkpoint format: one flat float32 vector each
        assert isinstance(optimizer_state[key], np.ndarray) and optimizer_state[key].dtype == np.float32
        assert optimizer_state[key].shape == (n,) and np.count_nonzero(optimizer_state[key]) > n // 2
    m_saved = optimizer_state["m"].copy()
    train_steps(model, optimizer, batches[3:])
    np.testing.assert_array_equal(optimizer_state["m"], m_saved)    # the snapshot was a copy

    resumed = tiny_transformer(seed=1)                               # other weights to start
    resumed_optimizer = cls(resumed.parameters(), lr=0.5)            # other hyper-parameters
    resumed.load_state_dict(model_state)
    resumed_optimizer.load_state_dict(optimizer_state)
    assert resumed_optimizer.lr == 1e-2 and resumed_optimizer.weight_decay == 1e-3
    train_steps(resumed, resumed_optimizer, batches[3:])
    assert resumed_optimizer.t == optimizer.t == 5
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    for key in ("m", "v"):
        np.testing.assert_array_equal(resumed_optimizer.state_dict()[key], optimizer.state_dict()[key])


def test_plain_adams_flat_moments_are_its_parameters_moments_in_order(rng):
    model = Quadratic(rng)
    optimizer = Adam(model.parameters(), lr=0.1)
    quadratic_steps(model, optimizer, *quadratic_data(rng), 2)
    state = optimizer.state_dict()
    expected = np.concatenate([m.ravel() for m in optimizer.m])
    assert [m.shape for m in optimizer.m] == [p.shape for p in model.parameters()]
    np.testing.assert_array_equal(state["m"], expected)
    twin = Adam(Quadratic(rng).parameters())
    twin.load_state_dict(state)
    for a, b in zip(twin.m + twin.v, optimizer.m + optimizer.v):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", [Adam, FlatAdam])
def test_adam_load_state_dict_refuses_another_models_state(rng, cls):
    small = cls(Quadratic(rng).parameters())
    big = cls(tiny_transformer(0).parameters())
    with pytest.raises(ValueError, match="optimizer state holds"):
        small.load_state_dict(big.state_dict())
