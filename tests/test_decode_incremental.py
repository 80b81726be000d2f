"""The step-by-step decoder (tinynmt/decoding/incremental.py) against the model's own forward.

IncrementalDecoder composes the decoder's pieces itself (embedding from position t, each
layer's attentions through the caches, its norms, dropouts and feed-forward, fc_out), so
its logits must be `model(src, trg)`'s at every position: greedy (one row per sentence)
and with beams (several rows per sentence, one cross-attention key row per sentence), with
shared and separate layer norms, with attention and activation dropout set (eval mode),
after beam reorders and after finished sentences leave.

Legend: N sentences, K beams, R rows (N * K), S source length, T target length, V vocabulary.
"""
import numpy as np
import pytest

from tinynmt import no_grad
from tinynmt.backend import to_numpy
from tinynmt.data import EOS_IDX, PAD_IDX, SOS_IDX
from tinynmt.decoding import IncrementalDecoder, SingleModel, eval_mode, max_positions, start_decoding
from tinynmt.nn import ModelConfig, build_transformer

SRC_V, TRG_V = 19, 13


def tiny_model(layer_norms="shared", xp=np, max_length=9, positions="learned"):
    """A random 2-layer model with every dropout set apart (all off in eval mode); its norms
    and biases are random too, so a norm used in the wrong place shows."""
    model = build_transformer(SRC_V, TRG_V, PAD_IDX, PAD_IDX, ModelConfig(
        hid_dim=16, enc_layers=2, dec_layers=2, enc_heads=4, dec_heads=4, enc_pf_dim=24, dec_pf_dim=24,
        enc_dropout=0.1, dec_dropout=0.2, attention_dropout=0.3, activation_dropout=0.4,
        max_length=max_length, layer_norms=layer_norms, positions=positions), seed=5)
    rng = np.random.default_rng(6)
    for param in model.parameters():
        if param.data.ndim == 1:                                         # norms' weights, all biases
            param.data += rng.normal(0, 0.5, param.data.shape).astype(np.float32)
    return model.to("cpu" if xp is np else "cuda").eval()


def sources(rng):
    """3 padded source rows of different lengths (N, S)."""
    rows = [[SOS_IDX, *rng.integers(4, SRC_V, size=n), EOS_IDX] for n in (5, 2, 3)]
    return np.array([r + [PAD_IDX] * (7 - len(r)) for r in rows])


def targets(rng, rows, length):
    """(rows, length) target ids: <sos>, then any tokens (no <pad>, as decoding feeds)."""
    return np.concatenate([np.full((rows, 1), SOS_IDX), rng.integers(3, TRG_V, (rows, length - 1))], axis=1)


def close(a, b):
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-5, atol=1e-5)


@no_grad()
def full_logits(model, src, trg):
    """The model's own forward over whole targets: logits (R, T, V), last layer's attention (R, H, T, S)."""
    logits, attention = model(src, trg)
    return logits.data, attention.data


@no_grad()
@pytest.mark.parametrize("layer_norms", ["shared", "separate"])
@pytest.mark.parametrize("beams", [1, 3])
def test_every_step_gives_the_forwards_logits(xp, rng, layer_norms, beams):
    model = tiny_model(layer_norms, xp)
    src = sources(rng)                                                   # (N, S)
    trg = targets(rng, len(src) * beams, 6)                              # (R, T), row n * K + k
    expected, expected_attention = full_logits(model, np.repeat(src, beams, axis=0), trg)
    state = IncrementalDecoder(model, src, capacity=6)
    for t in range(6):
        assert state.t == t
        logits, attention = state.next_logits(xp.asarray(trg[:, t]))     # (R, 1, V), (N, H, K, S)
        close(logits.data[:, 0], expected[:, t])
        close(to_numpy(attention.data).transpose(0, 2, 1, 3).reshape(len(trg), -1, src.shape[1]),
              expected_attention[:, :, t])


@no_grad()
@pytest.mark.parametrize("layer_norms", ["shared", "separate"])
def test_step_gives_the_forwards_log_probs_with_specials_forbidden(xp, rng, layer_norms):
    model = tiny_model(layer_norms, xp)
    src = sources(rng)
    trg = targets(rng, len(src) * 2, 5)
    logits, attention = full_logits(model, np.repeat(src, 2, axis=0), trg)
    expected = to_numpy(logits) - np.log(np.exp(to_numpy(logits)).sum(axis=-1, keepdims=True))  # (R, T, V)
    expected[:, :, [PAD_IDX, SOS_IDX]] = -np.inf
    state = IncrementalDecoder(model, src, capacity=5)
    for t in range(5):
        log_probs, step_attention = state.step(xp.asarray(trg[:, t]))    # (R, V), (R, H, S)
        close(log_probs, expected[:, t])
        close(step_attention, to_numpy(attention)[:, :, t])


@no_grad()
def test_reorder_and_keep_sentences_go_on_as_if_decoded_that_way(xp, rng):
    """Beam backpointers after two steps, then sentence 1 finishes and leaves the batch."""
    model, K = tiny_model(xp=xp), 2
    src = sources(rng)                                                   # (3, S)
    trg = targets(rng, 3 * K, 6)                                         # (6, T)
    state = IncrementalDecoder(model, src, capacity=6)
    for t in range(2):
        state.step(xp.asarray(trg[:, t]))
    rows = np.array([1, 1, 3, 2, 5, 4])                                  # each sentence's rows, reordered
    state.reorder(xp.asarray(rows))
    trg = trg[rows]
    state.step(xp.asarray(trg[:, 2]))
    kept = np.array([0, 2])                                              # sentence 1 is done
    state.keep_sentences(xp.asarray(kept))
    rows = (kept[:, None] * K + np.arange(K)).reshape(-1)                # (4,)
    state.reorder(xp.asarray(rows))
    trg, src = trg[rows], src[kept]
    expected, _ = full_logits(model, np.repeat(src, K, axis=0), trg)
    for t in range(3, 6):
        logits, _ = state.next_logits(xp.asarray(trg[:, t]))
        close(logits.data[:, 0], expected[:, t])


@no_grad()
def test_the_decoder_refuses_more_positions_than_its_room(rng):
    model = tiny_model()
    state = IncrementalDecoder(model, sources(rng), capacity=2)
    for _ in range(2):
        state.step(np.full(3, SOS_IDX))
    with pytest.raises(ValueError, match="room for 2 positions"):
        state.step(np.full(3, SOS_IDX))
    with pytest.raises(ValueError, match=r"room must be in \[1, 9\]"):
        IncrementalDecoder(model, sources(rng), capacity=10)


def test_a_single_model_has_the_interface_search_decodes_with(rng):
    model = tiny_model(max_length=8)
    single = SingleModel(model)
    assert single.models == [model] and single.trg_pad_idx == PAD_IDX
    assert single.max_positions() == max_positions(model) == (8, 8)
    with eval_mode(model):
        state = start_decoding(model, sources(rng), 4)
    assert isinstance(state, IncrementalDecoder) and state.capacity == 4 and state.t == 0
    assert EOS_IDX not in to_numpy(state.forbidden).tolist()
