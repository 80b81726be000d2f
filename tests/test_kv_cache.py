"""The two key/value caches of decoding (tinynmt/decoding/cache.py), against recomputation.

A SelfAttentionCache fed one position at a time must give what the layer's causal forward
over the whole sequence gives at that position; after `select(rows)` it must go on as if
those rows had been decoded in that order from the start. A CrossAttentionCache with beams
(keys/values one per sentence, a sentence's beams as its extra query positions) must give
what plain attention over keys/values repeated per beam gives.

Legend: N sentences, R rows (N * beams), S source length, T target length, D hidden,
H heads, V vocabulary.
"""
import numpy as np
import pytest

from tinynmt import no_grad
from tinynmt.autograd import Tensor
from tinynmt.backend import to_numpy
from tinynmt.decoding.cache import CrossAttentionCache, SelfAttentionCache
from tinynmt.nn import MultiHeadAttentionLayer

D, H = 16, 4


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
    a, b = (x.data if isinstance(x, Tensor) else x for x in (a, b))
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-5, atol=1e-6)


def attention_layer(xp):
    """Eval mode: its attention dropout (0.3 here) is off, as when decoding."""
    return MultiHeadAttentionLayer(D, H, 0.3).to(device(xp)).eval()


@no_grad()
def test_self_attention_one_position_at_a_time_equals_the_causal_forward(xp, rng):
    layer = attention_layer(xp)
    x = floats(xp, rng, 3, 5, D)                                         # (B, T, D)
    full, full_weights = layer(x, x, x, causal(xp, 5))                   # (B, T, D), (B, H, T, T)
    cache = SelfAttentionCache(capacity=5)
    for t in range(5):
        out, weights = cache.attend(layer, x[:, t:t + 1])                # (B, 1, D), (B, H, 1, t+1)
        assert cache.length == t + 1 and weights.shape == (3, H, 1, t + 1)
        close(out, full[:, t:t + 1])
        close(weights, full_weights[:, :, t:t + 1, :t + 1])


@no_grad()
def test_append_keeps_every_position_so_far(xp, rng):
    cache = SelfAttentionCache(capacity=4)
    first, second = floats(xp, rng, 2, H, 3, 4), floats(xp, rng, 2, H, 1, 4)  # (R, H, L, Dh)
    cache.append(first, first)
    keys, values = cache.append(second, Tensor(-second.data))
    close(keys, xp.concatenate([first.data, second.data], axis=2))       # (R, H, 4, Dh)
    close(values, xp.concatenate([first.data, -second.data], axis=2))


@no_grad()
def test_a_prefix_then_single_positions_equal_the_causal_forward(xp, rng):
    """A call may feed several positions (with their look-ahead mask), then go on one by one."""
    layer = attention_layer(xp)
    x = floats(xp, rng, 2, 5, D)
    full, _ = layer(x, x, x, causal(xp, 5))
    cache = SelfAttentionCache(capacity=5)
    first, _ = cache.attend(layer, x[:, :3], causal(xp, 3))
    close(first, full[:, :3])
    for t in (3, 4):
        step, _ = cache.attend(layer, x[:, t:t + 1])
        close(step, full[:, t:t + 1])


@no_grad()
def test_select_reorders_the_self_attention_cache(xp, rng):
    """Two steps, then rows [2, 0, 0] kept: the next steps are those of x[[2, 0, 0]]."""
    layer = attention_layer(xp)
    x = floats(xp, rng, 3, 4, D)
    cache = SelfAttentionCache(capacity=4)
    for t in range(2):
        cache.attend(layer, x[:, t:t + 1])
    rows = xp.asarray([2, 0, 0])
    cache.select(rows)
    picked = Tensor(x.data[rows])                                        # (3, T, D)
    full, _ = layer(picked, picked, picked, causal(xp, 4))
    for t in (2, 3):
        step, _ = cache.attend(layer, picked[:, t:t + 1])
        close(step, full[:, t:t + 1])


def test_the_self_attention_cache_refuses_more_than_its_capacity(rng):
    cache = SelfAttentionCache(capacity=2)
    K = Tensor(rng.standard_normal((1, H, 2, 4)).astype(np.float32))
    cache.append(K, K)
    with pytest.raises(ValueError, match="room for 2 positions"):
        cache.append(K[:, :, :1], K[:, :, :1])


@no_grad()
@pytest.mark.parametrize("beams", [1, 3])
def test_cross_attention_cache_with_beams_equals_keys_repeated_per_beam(xp, rng, beams):
    """Keys/values one per sentence, `beams` query rows each: (N, H, beams, Dh) @ (N, H, Dh, S)."""
    layer = attention_layer(xp)
    n, s = 2, 5
    memory, mask = floats(xp, rng, n, s, D), padding_mask(xp, [5, 3], s)   # (N, S, D), (N, 1, 1, S)
    repeated = Tensor(xp.repeat(memory.data, beams, axis=0))             # (R, S, D)
    repeated_mask = xp.repeat(mask, beams, axis=0)                       # (R, 1, 1, S)
    cache = CrossAttentionCache(layer, memory)
    for _ in range(3):
        query = floats(xp, rng, n * beams, 1, D)                         # (R, 1, D)
        expected, expected_weights = layer(query, repeated, repeated, repeated_mask)  # (R, 1, D), (R, H, 1, S)
        out, weights = cache.attend(layer, query, mask)                  # (R, 1, D), (N, H, beams, S)
        assert out.shape == (n * beams, 1, D) and weights.shape == (n, H, beams, s)
        close(out, expected)
        got = to_numpy(weights.data).transpose(0, 2, 1, 3).reshape(n * beams, H, 1, s)
        close(got, expected_weights)


@no_grad()
def test_cross_attention_cache_keeps_the_selected_sentences(xp, rng):
    """select([2, 0]): the cache of sentences 2 and 0, as if only they had been encoded."""
    layer = attention_layer(xp)
    memory, mask = floats(xp, rng, 3, 4, D), padding_mask(xp, [4, 2, 3], 4)
    cache = CrossAttentionCache(layer, memory)
    sentences = xp.asarray([2, 0])
    cache.select(sentences)
    kept = Tensor(memory.data[sentences])
    query = floats(xp, rng, 4, 1, D)                                     # 2 beams each
    out, _ = cache.attend(layer, query, mask[sentences])
    expected, _ = CrossAttentionCache(layer, kept).attend(layer, query, mask[sentences])
    close(out, expected)
    repeated = Tensor(xp.repeat(kept.data, 2, axis=0))
    plain, _ = layer(query, repeated, repeated, xp.repeat(mask[sentences], 2, axis=0))
    close(out, plain)
