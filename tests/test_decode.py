"""Greedy and beam search on the cached (incremental) decoder, against full recomputation.

A tiny random model: the reference decoders below rerun model(src, trg_so_far) at every
step, as the tutorial's translate_sentence does, so any difference in the caches, the
masks or the bookkeeping of finished sentences shows up as different tokens or scores.
"""
import itertools

import numpy as np
import pytest

from tinynmt import no_grad
from tinynmt.data import EOS_IDX, PAD_IDX, SOS_IDX
from tinynmt.decoding import beam_search, greedy_search, search
from tinynmt.nn import ModelConfig, build_transformer

FORBIDDEN = [PAD_IDX, SOS_IDX]


def tiny_model(src_vocab=23, trg_vocab=17, eos_bias=2.0, seed=7, max_length=24):
    """A random 2-layer model; a raised <eos> bias makes some outputs stop early, some not."""
    model = build_transformer(src_vocab, trg_vocab, PAD_IDX, PAD_IDX, ModelConfig(
        hid_dim=32, enc_layers=2, dec_layers=2, enc_heads=4, dec_heads=4, enc_pf_dim=48, dec_pf_dim=48,
        max_length=max_length), seed=seed)
    model.decoder.fc_out.bias.data[EOS_IDX] += eos_bias
    return model.eval()


def random_sources(n, vocab, rng, min_len=2, max_len=12):
    """n padded source rows <sos> w... <eos> of random lengths -> (array (n, S), list of unpadded rows)."""
    rows = [[SOS_IDX, *rng.integers(4, vocab, size=rng.integers(min_len, max_len + 1)), EOS_IDX]
            for _ in range(n)]
    width = max(map(len, rows))
    return np.array([r + [PAD_IDX] * (width - len(r)) for r in rows]), rows


@no_grad()
def next_log_probs(model, src_row, prefixes):
    """Log-probs (P, V) of the token after each prefix (all of one length), by a full forward pass."""
    src = np.repeat(np.array([src_row]), len(prefixes), axis=0)
    logits, _ = model(src, np.array(prefixes))                       # (P, T, V)
    log_probs = logits.log_softmax(axis=-1).numpy()[:, -1].copy()    # (P, V)
    log_probs[:, FORBIDDEN] = -np.inf
    return log_probs


def reference_greedy(model, src_row, max_steps, lenpen=1.0):
    """The tutorial's loop: rerun the whole decoder on the prefix every step."""
    trg, total = [SOS_IDX], np.float32(0)
    for _ in range(max_steps):
        log_probs = next_log_probs(model, src_row, [trg])[0]
        token = int(log_probs.argmax())
        total += log_probs[token]
        trg.append(token)
        if token == EOS_IDX:
            break
    finished = trg[-1] == EOS_IDX
    length = len(trg) - 1
    return trg[1:length + 1 - finished], total / np.float32(length ** lenpen), finished


def sequence_scores(model, src_row, sequences, lenpen):
    """Exact score of each output sequence (ids, <eos> last when finished) by teacher forcing."""
    scores = []
    for seq in sequences:
        log_probs = [next_log_probs(model, src_row, [[SOS_IDX, *seq[:i]]])[0][seq[i]] for i in range(len(seq))]
        scores.append(np.sum(np.float32(log_probs)) / len(seq) ** lenpen)
    return np.array(scores)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def sources():
    return random_sources(10, 23, np.random.default_rng(3))


def test_cached_greedy_matches_full_recomputation(model, sources):
    src, rows = sources
    hyps = greedy_search(model, src, max_steps=15)
    finished = []
    for i, row in enumerate(rows):
        tokens, score, done = reference_greedy(model, row, max_steps=15)
        assert hyps.tokens[i] == tokens, f"sentence {i}"
        assert hyps.finished[i] == done
        np.testing.assert_allclose(hyps.scores[i], score, rtol=1e-5)
        finished.append(done)
    # both ways of stopping are exercised: <eos>, and running out of max_steps
    assert any(finished) and not all(finished)
    assert all(len(t) == 15 for t, f in zip(hyps.tokens, finished) if not f)


def test_beam_one_is_greedy(model, sources):
    src, _ = sources
    for lenpen in (0.0, 1.0):
        greedy = greedy_search(model, src, max_steps=15, lenpen=lenpen)
        beam = beam_search(model, src, beam=1, max_steps=15, lenpen=lenpen)
        assert beam.tokens == greedy.tokens
        np.testing.assert_array_equal(beam.finished, greedy.finished)
        np.testing.assert_allclose(beam.scores, greedy.scores, rtol=1e-5)


@pytest.mark.parametrize("beam", [1, 3])
def test_batched_equals_one_by_one(model, sources, beam):
    src, rows = sources
    batched = beam_search(model, src, beam=beam, max_steps=12) if beam > 1 else greedy_search(model, src, max_steps=12)
    for i, row in enumerate(rows):
        one = (beam_search(model, np.array([row]), beam=beam, max_steps=12) if beam > 1
               else greedy_search(model, np.array([row]), max_steps=12))
        assert batched.tokens[i] == one.tokens[0], f"sentence {i}"
        np.testing.assert_allclose(batched.scores[i], one.scores[0], rtol=1e-5)


def test_beam_scores_are_the_model_scores(model, sources):
    src, rows = sources
    hyps = beam_search(model, src, beam=4, max_steps=10, lenpen=1.0)
    for i, row in enumerate(rows):
        seq = hyps.tokens[i] + ([EOS_IDX] if hyps.finished[i] else [])
        np.testing.assert_allclose(hyps.scores[i], sequence_scores(model, row, [seq], 1.0)[0], rtol=1e-5)


BRUTE_MAX_LEN, BRUTE_WORDS = 4, [0, 4, 5]  # trg ids that may be generated besides <eos>


@pytest.fixture(scope="module")
def brute_force():
    """Trg vocabulary of 6 (4 specials + 2 words), max_steps 4: every possible output (121) and,
    per sentence, the exact log-probs after every possible prefix (40 prefixes, 4 passes)."""
    model = tiny_model(trg_vocab=6, eos_bias=0.5, seed=11)
    src, rows = random_sources(3, 23, np.random.default_rng(5))
    prefixes = [list(p) for k in range(BRUTE_MAX_LEN) for p in itertools.product(BRUTE_WORDS, repeat=k)]
    tables = []
    for row in rows:
        table = {}
        for k in range(BRUTE_MAX_LEN):
            same_length = [p for p in prefixes if len(p) == k]
            for p, lp in zip(same_length, next_log_probs(model, row, [[SOS_IDX, *p] for p in same_length])):
                table[tuple(p)] = lp
        tables.append(table)
    outputs = [p + [EOS_IDX] for p in prefixes] + [list(s) for s in itertools.product(BRUTE_WORDS, repeat=BRUTE_MAX_LEN)]
    return model, src, tables, outputs


@pytest.mark.parametrize("lenpen", [0.0, 1.0, 2.0])
def test_wide_beam_finds_the_best_sequence(brute_force, lenpen):
    """A beam of 128 keeps all 121 outputs, so beam search must return the exact best."""
    model, src, tables, outputs = brute_force
    assert len(outputs) == 121
    hyps = beam_search(model, src, beam=128, max_steps=BRUTE_MAX_LEN, lenpen=lenpen)
    greedy = greedy_search(model, src, max_steps=BRUTE_MAX_LEN, lenpen=lenpen)
    beaten = 0
    for i, table in enumerate(tables):
        scores = np.array([np.sum(np.float32([table[tuple(seq[:j])][seq[j]] for j in range(len(seq))]))
                           / np.float32(len(seq) ** lenpen) for seq in outputs])
        best = outputs[int(scores.argmax())]
        assert hyps.tokens[i] + ([EOS_IDX] if hyps.finished[i] else []) == best, f"sentence {i}"
        np.testing.assert_allclose(hyps.scores[i], scores.max(), rtol=1e-5)
        assert hyps.scores[i] >= greedy.scores[i] - 1e-6
        beaten += hyps.scores[i] > greedy.scores[i] + 1e-6
    assert beaten, "greedy found the optimum everywhere: the check would not tell beam from greedy"


def test_wide_beam_nbest_is_the_exact_best_in_order(brute_force):
    """Beam 128 keeps all 121 outputs: its 10-best list is the 10 best by score, best first."""
    model, src, tables, outputs = brute_force
    hyps = beam_search(model, src, beam=128, max_steps=BRUTE_MAX_LEN, lenpen=1.0, nbest=10)
    assert len(hyps) == 3 * 10
    for i, table in enumerate(tables):
        scores = np.array([np.sum(np.float32([table[tuple(seq[:j])][seq[j]] for j in range(len(seq))])) / len(seq)
                           for seq in outputs])
        best = np.argsort(-scores, kind="stable")[:10]
        rows = range(i * 10, i * 10 + 10)
        assert [hyps.tokens[r] + ([EOS_IDX] if hyps.finished[r] else []) for r in rows] == [outputs[b] for b in best]
        np.testing.assert_allclose(hyps.scores[i * 10:i * 10 + 10], scores[best], rtol=1e-5)


def test_nbest_rows_are_distinct_real_outputs_best_first(model, sources):
    src, rows = sources
    one = beam_search(model, src, beam=4, max_steps=10)
    hyps = beam_search(model, src, beam=4, max_steps=10, nbest=3)
    assert len(hyps) == 3 * len(rows)
    for i, row in enumerate(rows):
        block = range(3 * i, 3 * i + 3)
        assert hyps.tokens[3 * i] == one.tokens[i] and hyps.scores[3 * i] == one.scores[i]  # nbest 1 is the best
        assert np.all(np.diff(hyps.scores[3 * i:3 * i + 3]) <= 0)
        seqs = [hyps.tokens[r] + ([EOS_IDX] if hyps.finished[r] else []) for r in block]
        assert len({tuple(s) for s in seqs}) == 3
        np.testing.assert_allclose(hyps.scores[3 * i:3 * i + 3], sequence_scores(model, row, seqs, 1.0), rtol=1e-5)


def test_nbest_must_be_between_one_and_the_beam(model, sources):
    with pytest.raises(ValueError, match=r"nbest must be in \[1, beam=3\], got 4"):
        beam_search(model, sources[0], beam=3, nbest=4)
    with pytest.raises(ValueError, match=r"nbest must be in \[1, beam=1\], got 2"):
        search(model, sources[0], beam=1, nbest=2)


def test_beam_scores_at_least_greedy(model, sources):
    """Not a theorem (a beam can drop the greedy path and do worse later; with a length
    penalty it also stops once `beam` hypotheses have finished, before longer ones that
    would score better), but what these seeded sentences must show with lenpen 0 (the
    exhaustive test above covers the rest); every hypothesis is a real output."""
    src, _ = sources
    greedy = greedy_search(model, src, max_steps=12, lenpen=0.0)
    beam = beam_search(model, src, beam=4, max_steps=12, lenpen=0.0)
    assert np.all(np.isfinite(beam.scores))
    assert np.all(beam.scores >= greedy.scores - 1e-6)
    assert np.any(beam.scores > greedy.scores + 1e-6)
    for tokens in beam.tokens:
        assert not set(tokens) & {PAD_IDX, SOS_IDX, EOS_IDX}


def test_decoding_restores_training_mode(sources):
    model = tiny_model().train()
    src, _ = sources
    greedy_search(model, src[:2], max_steps=3)
    beam_search(model, src[:2], beam=2, max_steps=3)
    assert all(m.training for m in model.modules())


def test_max_steps_beyond_positions_is_an_error(model, sources):
    with pytest.raises(ValueError, match="max_steps"):
        greedy_search(model, sources[0], max_steps=model.decoder.max_length + 1)


@pytest.mark.gpu
def test_cupy_decodes_like_numpy(sources):
    src, _ = sources
    cpu = tiny_model()
    gpu = tiny_model().to("cuda")
    for beam in (1, 3):
        a = beam_search(cpu, src, beam=beam, max_steps=12) if beam > 1 else greedy_search(cpu, src, max_steps=12)
        b = beam_search(gpu, src, beam=beam, max_steps=12) if beam > 1 else greedy_search(gpu, src, max_steps=12)
        assert a.tokens == b.tokens
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4)


@pytest.mark.parametrize("m, k", [(38520, 10), (38520, 2), (42, 4), (1000, 10), (7 * 64 * 20, 20)])
def test_blocked_top_k_selects_the_k_largest(m, k):
    from tinynmt.decoding.search import _top_k
    rng = np.random.default_rng(m + k)
    scores = rng.standard_normal((20, m)).astype(np.float32)
    scores[:, rng.integers(0, m, size=m // 3)] = -np.inf
    scores[0, : m - k // 2] = -np.inf                                   # a row with fewer than k finite
    top = _top_k(scores, k)
    assert top.shape == (20, k)
    assert all(len(set(row)) == k for row in top.tolist())              # k distinct entries
    got = np.take_along_axis(scores, top, axis=1)
    np.testing.assert_array_equal(got, -np.sort(-scores, axis=1)[:, :k])  # the k largest, best first
