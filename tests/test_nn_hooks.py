"""Module.register_forward_hook: PyTorch's forward hooks (module, args, output), removable."""
import numpy as np

from tinynmt.autograd import Tensor
from tinynmt.nn import Linear, ModelConfig, MultiHeadAttentionLayer, build_transformer


def test_a_hook_sees_the_module_its_positional_arguments_and_the_output(rng):
    layer = Linear(3, 2, generator=rng)
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    seen = []
    handle = layer.register_forward_hook(lambda module, args, output: seen.append((module, args, output)))
    y = layer(x)
    assert len(seen) == 1
    module, args, output = seen[0]
    assert module is layer and args[0] is x and output is y
    handle.remove()
    layer(x)
    assert len(seen) == 1                               # removed: not called again
    handle.remove()                                     # removing twice is harmless


def test_a_hook_that_returns_something_replaces_the_output_and_hooks_run_in_order(rng):
    layer = Linear(3, 2, generator=rng)
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    plain = layer(x).data.copy()
    calls = []
    layer.register_forward_hook(lambda m, a, out: calls.append("first") or out * 2)
    layer.register_forward_hook(lambda m, a, out: calls.append("second"))     # None: output kept
    np.testing.assert_allclose(layer(x).data, plain * 2, rtol=1e-6)
    assert calls == ["first", "second"]


def test_a_handle_used_as_a_context_manager_removes_its_hook(rng):
    layer = Linear(3, 2, generator=rng)
    x = Tensor(rng.standard_normal((1, 3)).astype(np.float32))
    count = []
    with layer.register_forward_hook(lambda m, a, out: count.append(1)):
        layer(x)
        layer(x)
    layer(x)
    assert len(count) == 2


def test_hooks_on_attention_layers_see_every_layers_weights_of_one_forward_pass(rng):
    config = ModelConfig(hid_dim=8, enc_layers=2, dec_layers=2, enc_heads=2, dec_heads=2, enc_pf_dim=16,
                         dec_pf_dim=16, max_length=8, enc_dropout=0.0, dec_dropout=0.0)
    model = build_transformer(9, 7, 1, 1, config, seed=3)
    names = [name for name, m in model.named_modules() if isinstance(m, MultiHeadAttentionLayer)]
    weights = {}
    handles = [m.register_forward_hook(lambda m, a, out, name=name: weights.__setitem__(name, out[1].data))
               for name, m in model.named_modules() if isinstance(m, MultiHeadAttentionLayer)]
    src, trg = np.array([[2, 5, 6, 3]]), np.array([[2, 4, 5]])
    _, last_cross = model(src, trg)
    assert sorted(weights) == sorted(names) and len(names) == 6     # 2 encoder, 2 x 2 decoder
    assert weights["encoder.layers.0.self_attention"].shape == (1, 2, 4, 4)
    assert weights["decoder.layers.1.self_attention"].shape == (1, 2, 3, 3)
    np.testing.assert_array_equal(weights["decoder.layers.1.encoder_attention"], last_cross.data)
    for handle in handles:
        handle.remove()
    weights.clear()
    model(src, trg)
    assert weights == {}
