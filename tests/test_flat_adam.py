"""The flat Adam and clip of tinynmt/fast against the plain ones of tinynmt/optim, and the
promise the flat buffers must keep: a parameter whose array is replaced still trains."""
import numpy as np
import pytest

from tinynmt.autograd import Tensor
from tinynmt.backend import to_device, to_numpy
from tinynmt.fast.flat_adam import FlatAdam, FlatAdamW, flat_clip_grad_norm_, shared_buffer
from tinynmt.nn import Linear, Module, Parameter, init
from tinynmt.optim import Adam, AdamW, clip_grad_norm_


class TwoLayers(Module):
    """loss = sum((fc2(relu(fc1(x))) - y)^2) over a few parameters of different shapes."""

    def __init__(self, seed, dtype=np.float64):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1, self.fc2 = Linear(5, 7, generator=rng), Linear(7, 3, generator=rng)
        self.gain = Parameter(rng.standard_normal(3).astype(np.float32))
        for p in self.parameters():
            p.data = p.data.astype(dtype)

    def loss(self, x, y):
        d = self.fc2(self.fc1(x).relu()) * self.gain - y
        return (d * d).sum()


TEACHER = np.random.default_rng(99).standard_normal((5, 3))


def data(seed, dtype=np.float64, rows=16):
    """Inputs (rows, 5) and their targets (rows, 3), a fixed linear map of them, for TwoLayers."""
    x = np.random.default_rng(seed).standard_normal((rows, 5))
    return Tensor(x.astype(dtype)), Tensor((x @ TEACHER).astype(dtype))


def train(model, optimizer, steps, clip=None, clip_fn=clip_grad_norm_, seed=0):
    """`steps` steps on fresh data each; -> the gradient norms (when clipping) and the losses."""
    norms, losses = [], []
    for step in range(steps):
        x, y = data(seed + step, model.gain.dtype)
        optimizer.zero_grad()
        loss = model.loss(x, y)
        loss.backward()
        losses.append(float(loss.item()))
        if clip is not None:
            norms.append(float(clip_fn(optimizer.params, clip)))
        optimizer.step()
    return norms, losses


def weights(model):
    return np.concatenate([to_numpy(p.data).ravel() for p in model.parameters()])


# ----- the flat optimizer and clip equal the plain ones

@pytest.mark.parametrize("plain, flat, weight_decay", [(Adam, FlatAdam, 0.0), (Adam, FlatAdam, 0.05),
                                                       (AdamW, FlatAdamW, 0.05)])
def test_flat_adam_and_clip_equal_the_plain_ones_over_50_float64_steps(plain, flat, weight_decay):
    runs = {}
    for name, cls, clip_fn in (("plain", plain, clip_grad_norm_), ("flat", flat, flat_clip_grad_norm_)):
        model = TwoLayers(seed=3)
        optimizer = cls(model.parameters(), lr=0.02, betas=(0.8, 0.95), eps=1e-7, weight_decay=weight_decay)
        if cls is flat:
            optimizer.CPU_BLOCK = 16              # 69 numbers: five blocks, the last one partial
        norms, losses = train(model, optimizer, 50, clip=50.0, clip_fn=clip_fn)
        runs[name] = norms, losses, weights(model), optimizer.state_dict()
    (norms, losses, w, state), (flat_norms, flat_losses, flat_w, flat_state) = runs["plain"], runs["flat"]
    assert sum(n > 50 for n in norms) >= 5 and sum(n < 50 for n in norms) >= 5     # both branches
    assert losses[-1] < losses[0] / 2                                               # it learned
    np.testing.assert_allclose(flat_norms, norms, rtol=1e-10)
    np.testing.assert_allclose(flat_losses, losses, rtol=1e-10)
    np.testing.assert_allclose(flat_w, w, rtol=1e-10, atol=1e-12)
    assert flat_state["t"] == state["t"] == 50
    for key in ("m", "v"):
        np.testing.assert_allclose(flat_state[key], state[key], rtol=1e-9, atol=1e-15)


def test_flat_clip_works_on_the_buffer_only_when_the_grads_fill_it(rng):
    model = TwoLayers(seed=1, dtype=np.float32)
    optimizer = FlatAdam(model.parameters())
    optimizer.zero_grad()
    model.loss(*data(0, np.float32)).backward()
    params = optimizer.params
    assert shared_buffer([p.grad for p in params]) is optimizer.flat_grad
    assert shared_buffer([p.grad for p in params[:2]]) is None          # a subset
    loose = [Parameter(p.data.copy()) for p in params]
    for p, q in zip(params, loose):
        q.grad = p.grad.copy()                                          # the same grads, not views
    before = [q.grad.copy() for q in loose]
    norm, loose_norm = flat_clip_grad_norm_(params, 1.0), flat_clip_grad_norm_(loose, 1.0)
    expected = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in before))
    assert expected > 1.0
    assert float(norm) == pytest.approx(expected, rel=1e-6) and float(loose_norm) == pytest.approx(expected, rel=1e-6)
    for p, q, g in zip(params, loose, before):
        assert p.grad.base is optimizer.flat_grad                       # scaled in place
        np.testing.assert_allclose(p.grad, g / expected, rtol=1e-5)
        np.testing.assert_allclose(q.grad, g / expected, rtol=1e-5)
    params[1].grad = params[1].grad.copy()                              # one grad replaced
    assert shared_buffer([p.grad for p in params]) is None
    params[1].grad *= 10
    assert float(flat_clip_grad_norm_(params, 1.0)) > 1.5               # the replaced one counts


def test_gradients_left_by_module_zero_grad_are_gathered(rng):
    """Module.zero_grad sets .grad to None; backward then makes fresh arrays, which step reads."""
    a, b = TwoLayers(seed=2), TwoLayers(seed=2)
    opt_a, opt_b = FlatAdam(a.parameters(), lr=0.1), FlatAdam(b.parameters(), lr=0.1)
    x, y = data(0)
    for _ in range(2):
        opt_a.zero_grad()                               # grads are views of a's buffer
        a.loss(x, y).backward()
        opt_a.step()
        b.zero_grad()                                   # grads are None ...
        b.loss(x, y).backward()                         # ... then arrays of their own
        assert not any(np.shares_memory(p.grad, opt_b.flat_grad) for p in b.parameters())
        grads = [p.grad.copy() for p in b.parameters()]
        opt_b.step()
        for p, g in zip(b.parameters(), grads):         # copied in, and views again
            assert p.grad.base is opt_b.flat_grad
            np.testing.assert_array_equal(p.grad, g)
    np.testing.assert_array_equal(opt_a.flat_param, opt_b.flat_param)


def test_parameters_become_views_of_one_buffer_with_their_values(rng):
    model = TwoLayers(seed=4, dtype=np.float32)
    values = [p.data.copy() for p in model.parameters()]
    optimizer = FlatAdam(model.parameters(), lr=0.01, weight_decay=0.01)
    for p, v in zip(model.parameters(), values):
        np.testing.assert_array_equal(p.data, v)               # same values, now in the buffer
        assert p.data.base is optimizer.flat_param
    train(model, optimizer, 3)
    assert optimizer.flat_param.dtype == optimizer.m.dtype == optimizer.v.dtype == np.float32
    np.testing.assert_array_equal(optimizer.flat_param, weights(model))


# ----- a replaced array still trains

def replace_fc1_bias(model, how):
    """Give fc1.bias a new array the way a user might; -> the values it should then hold."""
    bias = model.fc1.bias
    if how == "init.zeros_":
        init.zeros_(bias)
    elif how == "reset_parameters":
        model.fc1.reset_parameters(np.random.default_rng(9))
    elif how == "assignment":
        bias.data = np.full(bias.shape, 0.5, dtype=bias.dtype)
    elif how == "load_state_dict":
        state = model.state_dict()
        state["fc1.bias"] = np.full(bias.shape, -0.25)
        model.load_state_dict(state)
    return model.fc1.bias.data.copy()


HOW = ["init.zeros_", "reset_parameters", "assignment", "load_state_dict"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("cls", [Adam, FlatAdam])
def test_a_parameter_whose_array_is_replaced_after_construction_still_trains(cls, how):
    model = TwoLayers(seed=5)
    optimizer = cls(model.parameters(), lr=0.05)
    train(model, optimizer, 2)
    start = replace_fc1_bias(model, how)
    start_state = model.state_dict()
    train(model, optimizer, 3, seed=2)
    assert not np.allclose(model.fc1.bias.data, start)                  # it moved ...
    # ... exactly as under a plain Adam whose model got those values in place
    reference = TwoLayers(seed=5)
    reference_optimizer = Adam(reference.parameters(), lr=0.05)
    train(reference, reference_optimizer, 2)
    reference.load_state_dict(start_state)
    train(reference, reference_optimizer, 3, seed=2)
    np.testing.assert_allclose(weights(model), weights(reference), rtol=1e-10, atol=1e-12)
    if cls is FlatAdam:
        assert model.fc1.bias.data.base is optimizer.flat_param         # a view again


def test_flat_param_holds_a_replaced_array_and_writes_reach_it():
    """What the data-parallel start does: broadcast rank 0's weights into flat_param."""
    model = TwoLayers(seed=6)
    optimizer = FlatAdam(model.parameters())
    init.zeros_(model.fc2.bias)
    flat = optimizer.flat_param
    np.testing.assert_array_equal(flat, weights(model))
    flat[...] = 1.5
    np.testing.assert_array_equal(model.fc2.bias.data, 1.5)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.data.astype(np.float32), r"parameter 2 is now float32 \(7,\), its optimizer's slice float64 \(7,\)"),
    (lambda p: np.zeros((1, 7)), r"parameter 2 is now float64 \(1, 7\), its optimizer's slice float64 \(7,\)"),
])
def test_a_replacement_the_flat_buffer_cannot_hold_is_an_error_not_a_frozen_parameter(change, message):
    model = TwoLayers(seed=7)
    optimizer = FlatAdam(model.parameters())
    model.fc1.bias.data = change(model.fc1.bias)
    with pytest.raises(ValueError, match=message + ": build the optimizer after"):
        optimizer.step()


def test_zeros_after_construction_trains_the_bias_on_every_backend(xp):
    device = "cpu" if xp is np else "cuda"
    for cls in (Adam, FlatAdam):
        lin = Linear(3, 2, generator=np.random.default_rng(0)).to(device)
        optimizer = cls(lin.parameters(), lr=0.1)
        init.zeros_(lin.bias)
        x = Tensor(to_device(np.ones((4, 3), dtype=np.float32), device))
        losses = []
        for _ in range(3):
            optimizer.zero_grad()
            loss = (lin(x) * lin(x)).sum()
            loss.backward()
            losses.append(float(loss.item()))
            optimizer.step()
        bias = to_numpy(lin.bias.data)
        assert bias.dtype == np.float32 and np.all(bias != 0), (cls.__name__, bias)
        assert losses[2] < losses[0], (cls.__name__, losses)


@pytest.mark.gpu
def test_a_move_to_another_device_after_construction_is_an_error():
    lin = Linear(3, 2, generator=np.random.default_rng(0))
    optimizer = FlatAdam(lin.parameters())
    lin.to("cuda")
    with pytest.raises(ValueError, match="after model.to"):
        optimizer.step()


# ----- checkpoints move between the two

@pytest.mark.parametrize("first, second", [(Adam, FlatAdam), (FlatAdam, Adam)])
def test_state_dict_moves_between_plain_and_flat(first, second):
    model, twin = TwoLayers(seed=8), TwoLayers(seed=8)
    optimizer = first(model.parameters(), lr=0.03, weight_decay=0.01)
    train(model, optimizer, 4)
    model_state, state = model.state_dict(), optimizer.state_dict()
    train(model, optimizer, 3, seed=4)

    resumed = second(twin.parameters(), lr=1.0)
    twin.load_state_dict(model_state)
    resumed.load_state_dict(state)
    assert (resumed.t, resumed.lr, resumed.weight_decay) == (4, 0.03, 0.01)
    train(twin, resumed, 3, seed=4)
    np.testing.assert_allclose(weights(twin), weights(model), rtol=1e-10, atol=1e-12)
    for key in ("m", "v"):
        np.testing.assert_allclose(resumed.state_dict()[key], optimizer.state_dict()[key],
                                   rtol=1e-9, atol=1e-15)
