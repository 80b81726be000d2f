"""Parity with the tutorial's PyTorch model without PyTorch: tests/golden/tiny_transformer.npz
holds what PyTorch computed (tests/golden/make_golden.py) and tinynmt must compute the same
logits, losses, gradients and five Adam + clip_grad_norm_ steps. Where PyTorch is installed,
the file is regenerated in memory and must equal the committed one (it cannot go stale).

Legend: B batch, S source length, T target length, V vocabulary.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tinynmt.nn import CrossEntropyLoss, ModelConfig, build_transformer
from tinynmt.optim import Adam, clip_grad_norm_

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


def assert_close(ours, theirs, name, rtol=1e-4):
    """Equal up to rtol of the larger array's largest entry (as in test_torch_parity.py)."""
    scale = max(np.abs(theirs).max(), np.abs(ours).max(), 1e-30)
    err = np.abs(ours - theirs).max()
    assert err <= rtol * scale, f"{name}: max error {err:.3g} vs scale {scale:.3g}"


def is_noise(name):
    """fc_k.bias has gradient zero in exact arithmetic (softmax ignores a per-query constant,
    and q . b_k is one), so both sides hold rounding noise, which Adam scales up to steps of
    about lr: those are compared against the whole model, or not at all after Adam."""
    return name.endswith("fc_k.bias")


def test_the_file_is_small_and_holds_every_parameter(golden):
    assert GOLDEN.stat().st_size < 1_000_000
    names = list(model_from(golden).state_dict())
    for group in ("weights", "grads", "adam"):
        assert sorted(k.split("/", 1)[1] for k in golden if k.startswith(group + "/")
                      and k not in ("adam/src", "adam/trg", "adam/norms", "adam/losses")) == sorted(names)
    assert (golden["src"] == golden["config"]["pad"]).any() and (golden["trg"] == golden["config"]["pad"]).any()


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
    largest = max(np.abs(v).max() for k, v in golden.items() if k.startswith("grads/"))
    for name, param in model.named_parameters():
        theirs = golden[f"grads/{name}"]
        if is_noise(name):
            assert np.abs(param.grad).max() <= 1e-5 * largest, name
            assert np.abs(theirs).max() <= 1e-5 * largest, name
            continue
        assert_close(param.grad, theirs, f"gradient of {name}")


def test_five_adam_steps_with_active_clipping(golden):
    c = golden["config"]
    model = model_from(golden)
    optimizer = Adam(model.parameters(), lr=c["lr"], betas=tuple(c["betas"]), eps=c["eps"])
    for step in range(c["steps"]):
        optimizer.zero_grad()
        loss, _, _ = loss_of(model, golden, golden["adam/src"][step], golden["adam/trg"][step])
        loss.backward()
        norm = float(clip_grad_norm_(model.parameters(), c["clip"]))
        optimizer.step()
        assert norm > c["clip"], f"step {step + 1}: clipping was not active"
        assert norm == pytest.approx(float(golden["adam/norms"][step]), rel=1e-4), f"norm, step {step + 1}"
        assert loss.item() == pytest.approx(float(golden["adam/losses"][step]), rel=1e-4), f"step {step + 1}"
    for name, param in model.named_parameters():
        if not is_noise(name):
            moved = np.abs(golden[f"adam/{name}"] - golden[f"weights/{name}"]).max()
            assert moved > 1e-3, f"{name} did not move"
            assert_close(param.data, golden[f"adam/{name}"], f"{name} after {c['steps']} steps")


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
    for key, array in fresh.items():
        if key in ("config", "made_with") or (key.startswith("adam/") and is_noise(key)):
            continue
        assert array.dtype == golden[key].dtype and array.shape == golden[key].shape, f"{key}: {stale}"
        if key.startswith("weights/") or array.dtype.kind == "i":
            np.testing.assert_array_equal(array, golden[key], err_msg=f"{key}: {stale}")
        else:
            assert_close(array, golden[key], f"{key}: {stale}", rtol=1e-5)
