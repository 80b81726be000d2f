"""Parity with the tutorial's PyTorch model without PyTorch: tests/golden/tiny_transformer.npz
holds what PyTorch computed (tests/golden/make_golden.py) and tinynmt must compute the same
logits, losses, gradients and five Adam + clip_grad_norm_ steps. Where PyTorch is installed,
the file is regenerated in memory and must equal the committed one (it cannot go stale), up to
the bounds of tests/tolerance.py: PyTorch on another CPU rounds differently.

Legend: B batch, S source length, T target length, V vocabulary.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tinynmt.nn import CrossEntropyLoss, ModelConfig, build_transformer
from tinynmt.optim import Adam, clip_grad_norm_
from tolerance import (adam_mismatches, assert_close, gradient_mismatches, is_zero_in_exact_arithmetic,
                       largest_adam_move)

GOLDEN_DIR = Path(__file__).with_name("golden")
GOLDEN = GOLDEN_DIR / "tiny_transformer.npz"


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    data["config"] = json.loads(str(data["config"]))
    return data


def model_from(golden):
    """tinynmt's tiny model holding the golden weights (dropout 0)."""
    c = golden["config"]
    model = build_transformer(c["src_vocab"], c["trg_vocab"], c["pad"], c["pad"], ModelConfig(
        hid_dim=c["hid_dim"], enc_layers=c["n_layers"], dec_layers=c["n_layers"], enc_heads=c["n_heads"],
        dec_heads=c["n_heads"], enc_pf_dim=c["pf_dim"], dec_pf_dim=c["pf_dim"], enc_dropout=0.0,
        dec_dropout=0.0, max_length=c["max_length"]), seed=99)
    weights = {k[len("weights/"):]: v for k, v in golden.items() if k.startswith("weights/")}
    return model.load_state_dict(weights, strict=True)


def loss_of(model, golden, src, trg, label_smoothing=0.0):
    c = golden["config"]
    logits, attention = model(src, trg[:, :-1])                            # (B, T-1, V)
    loss = CrossEntropyLoss(ignore_index=c["pad"], label_smoothing=label_smoothing)(
        logits.reshape(-1, c["trg_vocab"]), trg[:, 1:].reshape(-1))
    return loss, logits, attention


def grads_of(arrays, prefix):
    """{parameter name: array} of the arrays whose key starts with prefix ("grads/")."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def first_adam_grads(arrays):
    """The gradients PyTorch's Adam divided by at its first step: those of grads/ (the same batch),
    clipped as clip_grad_norm_ clips them."""
    c = arrays["config"]
    coef = min(1.0, c["clip"] / (float(arrays["adam/norms"][0]) + 1e-6))
    return {name: grad * coef for name, grad in grads_of(arrays, "grads/").items()}


def test_the_file_is_small_and_holds_every_parameter(golden):
    assert GOLDEN.stat().st_size < 1_000_000
    names = list(model_from(golden).state_dict())
    for group in ("weights", "grads", "adam"):
        assert sorted(k.split("/", 1)[1] for k in golden if k.startswith(group + "/")
                      and k not in ("adam/src", "adam/trg", "adam/norms", "adam/losses")) == sorted(names)
    assert (golden["src"] == golden["config"]["pad"]).any() and (golden["trg"] == golden["config"]["pad"]).any()
    np.testing.assert_array_equal(golden["adam/src"][0], golden["src"])          # first_adam_grads
    np.testing.assert_array_equal(golden["adam/trg"][0], golden["trg"])


def test_logits_attention_and_both_losses(golden):
    model = model_from(golden)
    loss, logits, attention = loss_of(model, golden, golden["src"], golden["trg"])
    assert_close(logits.data, golden["logits"], "logits")
    assert_close(attention.data, golden["attention"], "attention")
    assert loss.item() == pytest.approx(float(golden["loss"]), rel=1e-5)
    smoothing = golden["config"]["label_smoothing"]
    smoothed, _, _ = loss_of(model, golden, golden["src"], golden["trg"], smoothing)
    assert smoothed.item() == pytest.approx(float(golden["loss_smoothed"]), rel=1e-5)
    assert abs(float(golden["loss_smoothed"]) - float(golden["loss"])) > 1e-3   # the option matters


def test_every_gradient(golden):
    model = model_from(golden)
    loss, _, _ = loss_of(model, golden, golden["src"], golden["trg"])
    loss.backward()
    failures = gradient_mismatches({name: param.grad for name, param in model.named_parameters()},
                                   grads_of(golden, "grads/"))
    assert not failures, "\n".join(failures)


def test_five_adam_steps_with_active_clipping(golden):
    c = golden["config"]
    model = model_from(golden)
    optimizer = Adam(model.parameters(), lr=c["lr"], betas=tuple(c["betas"]), eps=c["eps"])
    for step in range(c["steps"]):
        optimizer.zero_grad()
        loss, _, _ = loss_of(model, golden, golden["adam/src"][step], golden["adam/trg"][step])
        loss.backward()
        norm = float(clip_grad_norm_(model.parameters(), c["clip"]))
        if step == 0:
            first_grads = {name: param.grad.copy() for name, param in model.named_parameters()}
        optimizer.step()
        assert norm > c["clip"], f"step {step + 1}: clipping was not active"
        assert norm == pytest.approx(float(golden["adam/norms"][step]), rel=1e-4), f"norm, step {step + 1}"
        assert loss.item() == pytest.approx(float(golden["adam/losses"][step]), rel=1e-4), f"step {step + 1}"
    start, ours = grads_of(golden, "weights/"), {name: p.data for name, p in model.named_parameters()}
    theirs = {name: golden[f"adam/{name}"] for name in ours}
    for name in ours:
        if not is_zero_in_exact_arithmetic(name):
            assert np.abs(theirs[name] - start[name]).max() > 1e-3, f"{name} did not move"
    # where a first gradient is noise (every key bias) or near eps, Adam's steps are the noise's
    failures = adam_mismatches(ours, theirs, start, [first_grads, first_adam_grads(golden)], c["lr"],
                               c["steps"], c["betas"], c["eps"])
    assert not failures, "\n".join(failures)


def test_the_committed_file_is_what_make_golden_writes(golden):
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR / "make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    fresh = make_golden.golden_data()
    fresh["config"] = json.loads(str(fresh["config"]))
    stale = "tests/golden/tiny_transformer.npz is stale: run python tests/golden/make_golden.py"
    assert sorted(fresh) == sorted(golden), stale
    assert fresh["config"] == golden["config"], stale
    start = grads_of(golden, "weights/")
    for key, array in fresh.items():
        if key in ("config", "made_with"):
            continue
        assert array.dtype == golden[key].dtype and array.shape == golden[key].shape, f"{key}: {stale}"
        if key.startswith("weights/") or array.dtype.kind == "i":
            np.testing.assert_array_equal(array, golden[key], err_msg=f"{key}: {stale}")
        elif not key.startswith("grads/") and key.removeprefix("adam/") not in start:   # those below
            assert_close(array, golden[key], f"{key}: {stale}", rtol=1e-5)
    # PyTorch on another CPU sums in another order: the key biases' gradients (zero, but for
    # rounding noise) are compared against their attention's gradients, not against themselves,
    # and Adam, which divides by each gradient's size, turns 1e-6 differences into 1e-5: the
    # parameters after it keep test_five_adam_steps_with_active_clipping's bounds
    failures = gradient_mismatches(grads_of(fresh, "grads/"), grads_of(golden, "grads/"), rtol=1e-5)
    c = golden["config"]
    failures += adam_mismatches({name: fresh[f"adam/{name}"] for name in start},
                                {name: golden[f"adam/{name}"] for name in start}, start,
                                [first_adam_grads(fresh), first_adam_grads(golden)], c["lr"], c["steps"],
                                c["betas"], c["eps"])
    assert not failures, "\n".join([stale, *failures])


# ----- the comparison itself can fail

def test_gradient_comparison_fails_beyond_its_bound_and_only_there(golden):
    theirs = grads_of(golden, "grads/")
    key_bias = "decoder.layers.1.encoder_attention.fc_k.bias"
    module_scale = max(np.abs(theirs[key_bias.replace("fc_k.bias", part)]).max()
                       for part in ("fc_q.weight", "fc_q.bias", "fc_k.weight", "fc_v.weight", "fc_v.bias",
                                    "fc_o.weight", "fc_o.bias"))
    assert max(np.abs(g).max() for g in theirs.values()) > 2 * module_scale     # not the model's scale

    def failures_with(name, shift):
        ours = dict(theirs)
        ours[name] = theirs[name] + np.float32(shift)
        return gradient_mismatches(ours, theirs, rtol=1e-4)

    assert not gradient_mismatches(dict(theirs), theirs, rtol=1e-4)
    # another machine's noise, ten times this one's, is no mismatch; beyond the module's bound is
    assert not failures_with(key_bias, 10 * np.abs(theirs[key_bias]).max())
    assert not failures_with(key_bias, 0.9e-4 * module_scale)
    assert [line.split(" ")[0] for line in failures_with(key_bias, 1.1e-4 * module_scale)] == [key_bias]
    # every other gradient keeps its relative bound
    name = "encoder.layers.0.self_attention.fc_q.bias"
    own_scale = np.abs(theirs[name]).max()
    assert not failures_with(name, 0.9e-4 * own_scale)
    assert [line.split(":")[0] for line in failures_with(name, 1.1e-4 * own_scale)] == [name]


def test_adam_comparison_fails_beyond_its_bounds_and_only_there(golden):
    c = golden["config"]
    start = grads_of(golden, "weights/")
    theirs = {name: golden[f"adam/{name}"] for name in start}
    first = first_adam_grads(golden)
    bound = largest_adam_move(c["lr"], c["steps"], c["betas"])

    def failures_with(name, index, value):
        ours = dict(theirs)
        ours[name] = theirs[name].copy()
        ours[name][index] = value
        return adam_mismatches(ours, theirs, start, [first, first], c["lr"], c["steps"], c["betas"],
                               c["eps"])

    assert not adam_mismatches(dict(theirs), theirs, start, [first, first], c["lr"], c["steps"], c["betas"],
                               c["eps"])
    # a key bias's steps are its noise's: anywhere within Adam's largest move, and no further
    key_bias = "encoder.layers.0.self_attention.fc_k.bias"
    assert not failures_with(key_bias, 0, start[key_bias][0] - 0.99 * bound)
    assert len(failures_with(key_bias, 0, start[key_bias][0] + 1.01 * bound)) == 1
    # so is a coordinate whose first gradient is within 1e3 * eps of zero but not zero
    noisy = {name: np.flatnonzero((g != 0) & (np.abs(g) < 1e3 * c["eps"])) for name, g in first.items()
             if not is_zero_in_exact_arithmetic(name)}
    name, where = next((name, where) for name, where in noisy.items() if where.size)
    index = np.unravel_index(where[0], start[name].shape)
    assert not failures_with(name, index, start[name][index] + 0.99 * bound)
    assert len(failures_with(name, index, start[name][index] + 1.01 * bound)) == 1
    # every other coordinate keeps the relative bound, 1e-4 of its parameter's largest entry
    name = "decoder.layers.0.positionwise_feedforward.fc_2.weight"
    index = np.unravel_index(np.argmax(np.abs(first[name])), first[name].shape)
    scale = np.abs(theirs[name]).max()
    assert not failures_with(name, index, theirs[name][index] + 0.9e-4 * scale)
    failures = failures_with(name, index, theirs[name][index] + 1.1e-4 * scale)
    assert [line.split(":")[0] for line in failures] == [name]
