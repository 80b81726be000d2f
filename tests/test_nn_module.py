"""Module plumbing: parameter registration, state_dict / load_state_dict, train/eval, to,
apply, zero_grad."""
import numpy as np
import pytest

from tinynmt.autograd import Tensor
from tinynmt.backend import BackendError
from tinynmt.nn import (Dropout, EncoderLayer, LayerNorm, Linear, ModelConfig, Module, ModuleList, Parameter, build_transformer)


class Block(Module):
    """Two linears, a list of norms and a dropout: enough tree to walk."""

    def __init__(self, rng):
        super().__init__()
        self.fc_1 = Linear(3, 4, generator=rng)
        self.fc_2 = Linear(4, 2, bias=False, generator=rng)
        self.norms = ModuleList([LayerNorm(4), LayerNorm(2)])
        self.dropout = Dropout(0.5)
        self.not_a_parameter = np.ones(3)   # plain attributes are not registered

    def forward(self, x):
        return self.norms[1](self.fc_2(self.dropout(self.norms[0](self.fc_1(x)))))


EXPECTED_KEYS = ["fc_1.weight", "fc_1.bias", "fc_2.weight", "norms.0.weight", "norms.0.bias",
                 "norms.1.weight", "norms.1.bias"]


def test_parameters_are_registered_by_dotted_name(rng):
    block = Block(rng)
    names = [name for name, _ in block.named_parameters()]
    assert names == EXPECTED_KEYS
    assert [p.shape for p in block.parameters()] == [(4, 3), (4,), (2, 4), (4,), (4,), (2,), (2,)]
    assert all(isinstance(p, Parameter) and p.requires_grad for p in block.parameters())
    assert block.num_parameters() == 12 + 4 + 8 + 4 + 4 + 2 + 2
    assert [type(m).__name__ for m in block.children()] == ["Linear", "Linear", "ModuleList",
                                                            "Dropout"]
    assert len(block.norms) == 2 and block.norms[-1] is list(block.norms)[1]


def test_a_shared_parameter_is_trained_once_but_saved_under_each_name(rng):
    block = Block(rng)
    block.norms[1].weight = block.norms[0].weight = Parameter(np.ones(4, dtype=np.float32))
    names = [name for name, _ in block.named_parameters()]
    assert "norms.0.weight" in names and "norms.1.weight" not in names
    assert {"norms.0.weight", "norms.1.weight"} <= set(block.state_dict())


def test_reassigning_a_name_replaces_or_forgets_what_it_registered(rng):
    block = Block(rng)
    new_weight = Parameter(np.zeros((4, 3), dtype=np.float32))
    block.fc_1.weight = new_weight
    assert list(block.state_dict()) == EXPECTED_KEYS             # same place, new array
    assert block.parameters()[0] is new_weight
    block.fc_1.bias = None                                       # as Linear(bias=False) has
    assert "fc_1.bias" not in block.state_dict()
    assert all(p is not None for p in block.parameters()) and len(block.parameters()) == 6
    block.fc_2 = None
    assert [k for k in block.state_dict() if k.startswith("fc_2")] == []
    block.fc_2 = Linear(4, 2, generator=rng)
    assert "fc_2.bias" in block.state_dict()


def test_state_dict_holds_copies_in_the_parameters_dtype(rng):
    block = Block(rng)
    state = block.state_dict()
    assert list(state) == EXPECTED_KEYS
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in state.values())
    state["fc_1.weight"][...] = 7
    assert not (block.fc_1.weight.data == 7).any()


def test_load_state_dict_round_trip_copies_in_place(rng):
    source, target = Block(rng), Block(rng)
    arrays_before = [p.data for p in target.parameters()]
    state = {k: v.astype(np.float64) for k, v in source.state_dict().items()}
    assert target.load_state_dict(state) is target
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    # same arrays as before (an optimizer may hold views), still float32
    assert all(p.data is a for p, a in zip(target.parameters(), arrays_before))
    assert all(p.dtype == np.float32 for p in target.parameters())


def test_load_state_dict_strict_names_missing_and_unexpected_keys(rng):
    block = Block(rng)
    state = block.state_dict()
    del state["fc_2.weight"]
    with pytest.raises(KeyError, match=r"missing \['fc_2.weight'\]"):
        block.load_state_dict(state)
    state = block.state_dict()
    state["fc_3.weight"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(KeyError, match=r"unexpected \['fc_3.weight'\]"):
        block.load_state_dict(state)


def test_load_state_dict_not_strict_loads_what_matches(rng):
    block = Block(rng)
    before = block.state_dict()
    partial = {"fc_1.bias": np.full(4, 3.0, dtype=np.float32), "extra": np.zeros(1)}
    block.load_state_dict(partial, strict=False)
    after = block.state_dict()
    np.testing.assert_array_equal(after["fc_1.bias"], 3.0)
    for name in EXPECTED_KEYS:
        if name != "fc_1.bias":
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_load_state_dict_rejects_a_shape_mismatch_naming_the_key(rng):
    block = Block(rng)
    state = block.state_dict()
    state["fc_1.weight"] = np.zeros((3, 4), dtype=np.float32)     # transposed
    with pytest.raises(ValueError, match=r"fc_1.weight has shape \(3, 4\).*\(4, 3\)"):
        block.load_state_dict(state)
    with pytest.raises(ValueError, match="fc_1.weight"):
        block.load_state_dict(state, strict=False)


def test_train_and_eval_toggle_every_module_and_dropout(rng):
    block = Block(rng)
    x = Tensor(rng.standard_normal((64, 3)).astype(np.float32))
    assert all(m.training for m in block.modules())
    assert not np.array_equal(block(x).data, block(x).data)       # dropout draws new masks
    assert block.eval() is block
    assert not any(m.training for m in block.modules())
    np.testing.assert_array_equal(block(x).data, block(x).data)
    block.train()
    assert all(m.training for m in block.modules())
    block.train(False)
    assert not block.dropout.training


def test_to_cpu_is_a_no_op_and_unknown_devices_are_refused(rng):
    block = Block(rng)
    arrays = [p.data for p in block.parameters()]
    assert block.to("cpu") is block and block.device == "cpu"
    assert all(p.data is a for p, a in zip(block.parameters(), arrays))
    with pytest.raises(BackendError, match="unknown device 'tpu'"):
        block.to("tpu")


def test_apply_visits_children_before_parents(rng):
    block = Block(rng)
    visited = []
    assert block.apply(lambda m: visited.append(type(m).__name__)) is block
    assert visited == ["Linear", "Linear", "LayerNorm", "LayerNorm", "ModuleList", "Dropout",
                       "Block"]

    def zero_biases(module):
        if isinstance(module, Linear) and module.bias is not None:
            module.bias.data[...] = 0

    block.apply(zero_biases)
    np.testing.assert_array_equal(block.fc_1.bias.data, 0)


def test_zero_grad_clears_every_gradient(rng):
    block = Block(rng).eval()
    block(Tensor(rng.standard_normal((5, 3)).astype(np.float32))).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.zero_grad()
    assert all(p.grad is None for p in block.parameters())


def test_the_transformer_tree_has_the_tutorials_names():
    model = build_transformer(7, 6, 1, 1, ModelConfig(hid_dim=8, enc_layers=1, dec_layers=2, enc_heads=2,
                                                      dec_heads=2, enc_pf_dim=16, dec_pf_dim=16, max_length=5))
    layer = model.decoder.layers[1]
    assert isinstance(model.encoder.layers[0], EncoderLayer)
    assert layer.encoder_attention.fc_k.weight.shape == (8, 8)
    assert model.decoder.fc_out.weight.shape == (6, 8)
    assert model.encoder.pos_embedding.weight.shape == (5, 8)
    assert len(model.decoder.layers) == 2
