"""Ensembles in greedy and beam search, against the mean-of-probabilities formula by hand.

The by-hand numbers rerun each model on the whole prefix (test_decode.next_log_probs) and
combine them in float64 as log(mean_m exp(log p_m)), so the ensemble's caches, its
combination and the search bookkeeping are all checked against an independent computation.
"""
import itertools

import numpy as np
import pytest
from test_decode import BRUTE_MAX_LEN, BRUTE_WORDS, next_log_probs, random_sources, tiny_model

from tinynmt.data import EOS_IDX, SOS_IDX
from tinynmt.decoding import (Ensemble, beam_search, greedy_search, max_positions, mean_of_probabilities, search)


def mean_of_probs_by_hand(log_probs):
    """log(mean over axis 0 of exp(log_probs)) in float64; -inf where every model has -inf."""
    with np.errstate(divide="ignore"):
        return np.log(np.exp(np.asarray(log_probs, dtype=np.float64)).mean(axis=0))


def ensemble_next_log_probs(models, src_row, prefixes):
    """The ensemble's log-probs (P, V) after each prefix, by hand from full recomputation."""
    return mean_of_probs_by_hand([next_log_probs(m, src_row, prefixes) for m in models])


def ensemble_sequence_score(models, src_row, seq, lenpen):
    """Length-penalised ensemble score of one output (ids, <eos> last when finished)."""
    steps = [ensemble_next_log_probs(models, src_row, [[SOS_IDX, *seq[:i]]])[0][seq[i]] for i in range(len(seq))]
    return np.sum(steps) / len(seq) ** lenpen


@pytest.fixture(scope="module")
def models():
    """Two different random models of the same vocabularies (raised <eos> bias: outputs of several lengths)."""
    return tiny_model(seed=7), tiny_model(seed=8, eos_bias=1.0)


@pytest.fixture(scope="module")
def sources():
    return random_sources(8, 23, np.random.default_rng(4))


def decode(model, src, beam, **options):
    return search(model, src, beam=beam, max_steps=12, **options)


@pytest.mark.parametrize("beam", [1, 3])
def test_an_ensemble_of_one_is_the_model(models, sources, beam):
    src, _ = sources
    alone, ensemble = decode(models[0], src, beam), decode(Ensemble([models[0]]), src, beam)
    assert ensemble.tokens == alone.tokens
    np.testing.assert_array_equal(ensemble.scores, alone.scores)
    np.testing.assert_array_equal(ensemble.finished, alone.finished)


@pytest.mark.parametrize("beam", [1, 3])
def test_a_model_with_itself_decodes_as_the_model(models, sources, beam):
    src, _ = sources
    alone, twice = decode(models[0], src, beam), decode(Ensemble([models[0], models[0]]), src, beam)
    assert twice.tokens == alone.tokens
    np.testing.assert_allclose(twice.scores, alone.scores, rtol=1e-5)


def test_two_models_greedy_follows_the_mean_of_probabilities(models, sources):
    src, rows = sources
    hyps = greedy_search(Ensemble(models), src, max_steps=12)
    singles = [greedy_search(m, src, max_steps=12) for m in models]
    assert hyps.tokens != singles[0].tokens and hyps.tokens != singles[1].tokens  # a third opinion
    for i, row in enumerate(rows):
        trg, total = [SOS_IDX], 0.0
        for _ in range(12):                       # the tutorial's greedy loop on the ensemble's log-probs
            log_probs = ensemble_next_log_probs(models, row, [trg])[0]
            trg.append(int(log_probs.argmax()))
            total += log_probs[trg[-1]]
            if trg[-1] == EOS_IDX:
                break
        finished = trg[-1] == EOS_IDX
        assert hyps.tokens[i] == trg[1:len(trg) - finished], f"sentence {i}"
        np.testing.assert_allclose(hyps.scores[i], total / (len(trg) - 1), rtol=1e-5)


def test_two_models_beam_scores_are_the_ensemble_scores(models, sources):
    src, rows = sources
    hyps = beam_search(Ensemble(models), src, beam=4, max_steps=10, lenpen=1.0, nbest=2)
    for r, (tokens, score, finished) in enumerate(zip(hyps.tokens, hyps.scores, hyps.finished)):
        seq = tokens + ([EOS_IDX] if finished else [])
        np.testing.assert_allclose(score, ensemble_sequence_score(models, rows[r // 2], seq, 1.0), rtol=1e-5)


def test_a_wide_beam_finds_the_ensembles_best_sequences():
    """Vocabulary of 6, max_steps 4: beam 128 keeps all 121 outputs, so the ensemble's 5 best
    (by the formula, computed for every output) must come back in order."""
    models = [tiny_model(trg_vocab=6, eos_bias=0.5, seed=s) for s in (11, 12)]
    src, rows = random_sources(2, 23, np.random.default_rng(6))
    prefixes = [list(p) for k in range(BRUTE_MAX_LEN) for p in itertools.product(BRUTE_WORDS, repeat=k)]
    outputs = [p + [EOS_IDX] for p in prefixes] + [list(s) for s in itertools.product(BRUTE_WORDS, repeat=4)]
    hyps = beam_search(Ensemble(models), src, beam=128, max_steps=BRUTE_MAX_LEN, lenpen=1.0, nbest=5)
    for i, row in enumerate(rows):
        table = {}
        for k in range(BRUTE_MAX_LEN):
            same = [p for p in prefixes if len(p) == k]
            table.update(zip(map(tuple, same), ensemble_next_log_probs(models, row, [[SOS_IDX, *p] for p in same])))
        scores = np.array([sum(table[tuple(s[:j])][s[j]] for j in range(len(s))) / len(s) for s in outputs])
        best = np.argsort(-scores, kind="stable")[:5]
        got = [t + ([EOS_IDX] if f else []) for t, f in zip(hyps.tokens[i * 5:i * 5 + 5], hyps.finished[i * 5:i * 5 + 5])]
        assert got == [outputs[b] for b in best], f"sentence {i}"
        np.testing.assert_allclose(hyps.scores[i * 5:i * 5 + 5], scores[best], rtol=1e-5)


def test_mean_of_probabilities_is_stable_and_exact_for_one(rng):
    log_probs = rng.normal(size=(3, 4, 5)).astype(np.float32) * 50 - 200   # exp underflows float32
    got = mean_of_probabilities(log_probs)
    assert got.dtype == np.float32
    expected = np.logaddexp.reduce(log_probs.astype(np.float64), axis=0) - np.log(3)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert np.all(got >= log_probs.min(axis=0)) and np.all(got <= log_probs.max(axis=0))
    np.testing.assert_array_equal(mean_of_probabilities(log_probs[:1]), log_probs[0])


def test_ensembles_must_share_vocabularies_and_take_the_shortest_positions():
    with pytest.raises(ValueError, match="model 2 has target vocabulary size 19, model 1 has 17"):
        Ensemble([tiny_model(), tiny_model(trg_vocab=19)])
    with pytest.raises(ValueError, match="at least one model"):
        Ensemble([])
    assert max_positions(Ensemble([tiny_model(), tiny_model(max_length=20)])) == (20, 20)


def test_decoding_an_ensemble_restores_each_models_mode(sources):
    a, b = tiny_model().train(), tiny_model().eval()
    greedy_search(Ensemble([a, b]), sources[0][:2], max_steps=3)
    assert all(m.training for m in a.modules()) and not any(m.training for m in b.modules())


@pytest.mark.gpu
def test_cupy_ensembles_decode_and_score_like_numpy(sources):
    from tinynmt.backend import to_numpy
    from tinynmt.decoding import reference_log_probs
    src, _ = sources
    cpu = Ensemble([tiny_model(seed=7), tiny_model(seed=8, eos_bias=1.0)])
    gpu = Ensemble([tiny_model(seed=7).to("cuda"), tiny_model(seed=8, eos_bias=1.0).to("cuda")])
    for beam in (1, 3):
        a, b = decode(cpu, src, beam, nbest=beam), decode(gpu, src, beam, nbest=beam)
        assert a.tokens == b.tokens
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4)
    trg = np.where(src > 16, 5, src)                      # any ids of the target vocabulary (17)
    np.testing.assert_allclose(to_numpy(reference_log_probs(gpu, src, trg)), reference_log_probs(cpu, src, trg),
                               rtol=1e-4, atol=1e-5)
