"""Scores of given references (teacher forcing) against the incremental decoder's steps and,
for ensembles, the mean-of-probabilities formula by hand."""
import numpy as np
import pytest
from test_decode import next_log_probs, random_sources, tiny_model
from test_decode_ensemble import mean_of_probs_by_hand

from tinynmt import no_grad
from tinynmt.data import SOS_IDX, SPECIALS, DataError, Vocab, get_tokenizer
from tinynmt.decoding import Ensemble, IncrementalDecoder, reference_log_probs, score_references


@pytest.fixture(scope="module")
def models():
    return tiny_model(seed=7), tiny_model(seed=8, eos_bias=1.0)


@pytest.fixture(scope="module")
def pairs():
    """Sources (N, S) and references (N, T) of different lengths, both padded, <sos>/<eos> framed."""
    rng = np.random.default_rng(9)
    src, src_rows = random_sources(6, 23, rng)
    trg, trg_rows = random_sources(6, 17, rng, min_len=1, max_len=9)
    return src, src_rows, trg, trg_rows


@no_grad()
def incremental_log_probs(model, src_row, trg_row):
    """Log-prob of each token of trg_row[1:], fed one step at a time to the cached decoder."""
    state = IncrementalDecoder(model.eval(), np.array([src_row]), capacity=len(trg_row) - 1)
    out = []
    for t in range(len(trg_row) - 1):
        log_probs, _ = state.step(np.array([trg_row[t]]))          # (1, V)
        out.append(log_probs[0, trg_row[t + 1]])
    return np.array(out)


def test_reference_log_probs_are_the_incremental_decoders(models, pairs):
    src, src_rows, trg, trg_rows = pairs
    got = reference_log_probs(models[0], src, trg)                  # (N, T-1)
    assert got.shape == (6, trg.shape[1] - 1) and got.dtype == np.float32
    for i, (s, t) in enumerate(zip(src_rows, trg_rows)):
        np.testing.assert_allclose(got[i, :len(t) - 1], incremental_log_probs(models[0], s, t), rtol=1e-5, atol=1e-6)
        assert np.all(got[i, len(t) - 1:] == 0)                     # padding
        assert np.isclose(got[i].sum(), incremental_log_probs(models[0], s, t).sum(), rtol=1e-5)


def test_ensemble_reference_log_probs_are_the_mean_of_probabilities(models, pairs):
    src, src_rows, trg, trg_rows = pairs
    got = reference_log_probs(Ensemble(models), src, trg)
    np.testing.assert_array_equal(reference_log_probs(Ensemble(models[:1]), src, trg),
                                  reference_log_probs(models[0], src, trg))
    for i, (s, t) in enumerate(zip(src_rows, trg_rows)):
        prefixes = [t[:k] for k in range(1, len(t))]
        each = np.array([[next_log_probs(m, s, [p])[0][t[len(p)]] for p in prefixes] for m in models])  # (2, T-1)
        np.testing.assert_allclose(got[i, :len(t) - 1], mean_of_probs_by_hand(each), rtol=1e-5, atol=1e-6)
        assert np.all(got[i, :len(t) - 1] >= each.min(axis=0) - 1e-5)
        assert np.all(got[i, :len(t) - 1] <= each.max(axis=0) + 1e-5)


def test_score_references_of_text_lines():
    words = "ein mann hund park zwei kinder".split()
    vocab = Vocab(SPECIALS + tuple(words))
    model = tiny_model(src_vocab=len(vocab), trg_vocab=len(vocab), max_length=6)
    tok = get_tokenizer("whitespace")
    sources = ["ein mann", "", "zwei kinder park", "ein hund", "ein mann hund park zwei kinder", "xyzzy"]
    refs = ["zwei hund", "ein", "   ", "kinder kinder park", "mann", "park"]
    warnings = []
    got = score_references(model, sources, refs, vocab, vocab, tok, batch_size=2, warn=warnings.append)
    assert got[1] is None and got[2] is None                        # a side without tokens: not scored
    assert warnings == ["sentence 5: source of 6 tokens, more than the model's 4 (max_length 6 with "
                        "<sos>/<eos>): dropped the last 2"]
    for i in (0, 3, 4, 5):
        src = [SOS_IDX, *vocab.encode(sources[i].split()[:4]), 3]
        trg = [SOS_IDX, *vocab.encode(refs[i].split()), 3]
        assert got[i].dtype == np.float32 and len(got[i]) == len(trg) - 1   # <eos> included
        np.testing.assert_allclose(got[i], incremental_log_probs(model, src, trg), rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="differ in length"):
        score_references(model, sources, refs[:2], vocab, vocab, tok)
