"""The key/value cache as an argument of the model's own layers (tinynmt/decoding/cache.py).

Fed one target position at a time with a cache, `DecoderLayer` and `Decoder` must give what
their full causal forward gives at that position; a cross-attention cache with beams must
give what plain attention over keys/values repeated per beam gives; `select` must leave a
cache that goes on as if its rows had been decoded in that order from the start.

Legend: N sentences, R rows (N * beams), S source length, T target length, D hidden,
H heads, V vocabulary.
"""
import numpy as np
import pytest

from tinynmt import no_grad
from tinynmt.autograd import Tensor
from tinynmt.backend import to_numpy
from tinynmt.nn import Decoder, DecoderLayer, MultiHeadAttentionLayer
from tinynmt.decoding.cache import DecoderCache, KVCache

D, H, P, V = 16, 4, 24, 11


def device(xp):
    return "cpu" if xp is np else "cuda"


def padding_mask(xp, lengths, length):
    """(B, 1, 1, L): True at the first lengths[b] positions of row b."""
    return xp.asarray((np.arange(length)[None, :] < np.asarray(lengths)[:, None])[:, None, None, :])


def causal(xp, length):
    """(1, 1, T, T): no position sees a later one."""
    return xp.asarray(np.tril(np.ones((length, length), bool)))[None, None]


def floats(xp, rng, *shape):
    return Tensor(xp.asarray(rng.standard_normal(shape).astype(np.float32)))


def close(a, b):
    np.testing.assert_allclose(to_numpy(a.data), to_numpy(b.data), rtol=1e-5, atol=1e-6)


@no_grad()
def test_decoder_layer_one_position_at_a_time_equals_the_causal_forward(xp, rng):
    layer = DecoderLayer(D, H, P, 0.1).to(device(xp)).eval()
    trg, enc_src = floats(xp, rng, 3, 5, D), floats(xp, rng, 3, 6, D)   # (B, T, D), (B, S, D)
    src_mask = padding_mask(xp, [6, 4, 2], 6)                            # (B, 1, 1, S)
    full, full_attention = layer(trg, enc_src, causal(xp, 5), src_mask)  # (B, T, D), (B, H, T, S)
    cache = (KVCache.self_attention(max_len=5), KVCache.cross_attention())
    for t in range(5):
        out, attention = layer(trg[:, t:t + 1], enc_src, None, src_mask, cache)  # (B, 1, D), (B, H, 1, S)
        close(out, full[:, t:t + 1])
        close(attention, full_attention[:, :, t:t + 1])
    assert cache[0].length == 5


@no_grad()
def test_decoder_one_position_at_a_time_equals_the_causal_forward(xp, rng):
    decoder = Decoder(V, D, 2, H, P, 0.1, max_length=7).to(device(xp)).eval()
    trg = xp.asarray(rng.integers(0, V, (3, 6)))                         # (B, T)
    enc_src, src_mask = floats(xp, rng, 3, 4, D), padding_mask(xp, [4, 2, 3], 4)
    logits, attention = decoder(trg, enc_src, causal(xp, 6), src_mask)   # (B, T, V), (B, H, T, S)
    cache = DecoderCache(n_layers=2, max_len=6)
    for t in range(6):
        assert cache.length == t
        step_logits, step_attention = decoder(trg[:, t:t + 1], enc_src, None, src_mask, cache)
        close(step_logits, logits[:, t:t + 1])
        close(step_attention, attention[:, :, t:t + 1])


@no_grad()
def test_a_prefix_then_single_positions_equal_the_causal_forward(xp, rng):
    """A call may feed several positions (with their look-ahead mask), then go on one by one."""
    decoder = Decoder(V, D, 2, H, P, 0.0, max_length=7).to(device(xp)).eval()
    trg = xp.asarray(rng.integers(0, V, (2, 5)))
    enc_src, src_mask = floats(xp, rng, 2, 3, D), padding_mask(xp, [3, 1], 3)
    logits, _ = decoder(trg, enc_src, causal(xp, 5), src_mask)
    cache = DecoderCache(n_layers=2, max_len=5)
    first, _ = decoder(trg[:, :3], enc_src, causal(xp, 3), src_mask, cache)
    close(first, logits[:, :3])
    for t in (3, 4):
        step, _ = decoder(trg[:, t:t + 1], enc_src, None, src_mask, cache)
        close(step, logits[:, t:t + 1])


@no_grad()
def test_select_reorders_the_self_attention_cache(xp, rng):
    """Two steps, then rows [2, 0, 0] kept: the next steps are those of trg[[2, 0, 0]]."""
    decoder = Decoder(V, D, 2, H, P, 0.0, max_length=5).to(device(xp)).eval()
    trg = xp.asarray(rng.integers(0, V, (3, 4)))
    enc_src = floats(xp, rng, 1, 3, D)                                   # one sentence for all rows
    src_mask = padding_mask(xp, [3], 3)
    cache = DecoderCache(n_layers=2, max_len=4)
    for t in range(2):
        decoder(trg[:, t:t + 1], enc_src, None, src_mask, cache)
    rows = xp.asarray([2, 0, 0])
    cache.reorder(rows)
    logits, _ = decoder(trg[rows], enc_src, causal(xp, 4), src_mask)
    for t in (2, 3):
        step, _ = decoder(trg[rows][:, t:t + 1], enc_src, None, src_mask, cache)
        close(step, logits[:, t:t + 1])


@no_grad()
@pytest.mark.parametrize("beams", [1, 3])
def test_cross_attention_cache_with_beams_equals_keys_repeated_per_beam(xp, rng, beams):
    """Keys/values one per sentence, `beams` query rows each: (N, H, beams, Dh) @ (N, H, Dh, S)."""
    layer = MultiHeadAttentionLayer(D, H, 0.1).to(device(xp)).eval()
    n, s = 2, 5
    memory, mask = floats(xp, rng, n, s, D), padding_mask(xp, [5, 3], s)   # (N, S, D), (N, 1, 1, S)
    repeated = Tensor(xp.repeat(memory.data, beams, axis=0))             # (R, S, D)
    repeated_mask = xp.repeat(mask, beams, axis=0)                       # (R, 1, 1, S)
    cache = KVCache.cross_attention(beams)
    for step in range(3):
        query = floats(xp, rng, n * beams, 1, D)                         # (R, 1, D)
        expected, expected_attention = layer(query, repeated, repeated, repeated_mask)  # (R, 1, D), (R, H, 1, S)
        key = memory if step == 0 else None                              # later steps reuse the cache
        out, attention = layer(query, key, key, mask, cache)             # (R, 1, D), (N, H, beams, S)
        assert out.shape == (n * beams, 1, D) and attention.shape == (n, H, beams, s)
        close(out, expected)
        got = to_numpy(attention.data).transpose(0, 2, 1, 3).reshape(n * beams, H, 1, s)
        np.testing.assert_allclose(got, to_numpy(expected_attention.data), rtol=1e-5, atol=1e-6)
    assert cache.complete


def test_the_self_attention_cache_refuses_more_than_its_room(rng):
    cache = KVCache.self_attention(max_len=2)
    K = Tensor(rng.standard_normal((1, H, 2, 4)).astype(np.float32))
    cache.update(K, K)
    with pytest.raises(ValueError, match="room for 2 positions"):
        cache.update(K[:, :, :1], K[:, :, :1])


def test_the_training_forward_has_no_cache_and_records_the_graph(rng):
    """cache=None is the tutorial's layer: gradients reach every parameter."""
    layer = DecoderLayer(D, H, P, 0.0)
    trg = Tensor(rng.standard_normal((2, 3, D)).astype(np.float32), requires_grad=True)
    enc_src = Tensor(rng.standard_normal((2, 4, D)).astype(np.float32), requires_grad=True)
    out, _ = layer(trg, enc_src, causal(np, 3), padding_mask(np, [4, 2], 4))
    out.sum().backward()
    assert trg.grad is not None and enc_src.grad is not None
    assert all(p.grad is not None for p in layer.parameters())
