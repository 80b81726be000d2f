"""moses_tokenize and tokenized_bleu_score: Multi30k's tokenized files and the BLEU papers report on them."""
import math

import pytest

from tinynmt.decoding.metrics import TOKENIZED_BLEU_NAME, moses_tokenize, sacrebleu_score, tokenized_bleu_score


@pytest.mark.parametrize("lang, raw, tokenized", [
    # tokenizer.perl without -a: hyphenated words stay one token (no "@-@")
    ("de", "Ein Mann in einem T-Shirt spielt Fußball.", "ein mann in einem t-shirt spielt fußball ."),
    # escaping on: ' and " become &apos; and &quot;, & becomes &amp;; English keeps 's together
    ("en", "A man's \"Q&A\" sign.", "a man &apos;s &quot; q &amp; a &quot; sign ."),
    ("de", "Levi's Laden", "levi &apos; s laden"),
    # normalize-punctuation.perl -l de: „ “ become ", and a final ." becomes ". (the perl script
    # sees the line's newline); the 2017 Moses snapshot turns a ‘ ’ or ‚ not between letters into "
    ("de", "Sie sagt: „Wir sind hier.“", "sie sagt : &quot; wir sind hier &quot; ."),
    ("de", "das „Hook ’em Horns“-Zeichen", "das &quot; hook &quot; em horns &quot; -zeichen"),
    ("de", "ein ‚Trader Joe‘s‘ Schild", "ein &quot; trader joe &apos; s &quot; schild"),
])
def test_moses_tokenize_makes_multi30k_tok_lines(lang, raw, tokenized):
    assert moses_tokenize([raw], lang) == [tokenized]


def test_equal_to_the_reference_is_100_and_case_is_ignored():
    refs = ["Ein Mann in einem T-Shirt spielt Tennis.", "Zwei Hunde laufen über eine Wiese."]
    assert tokenized_bleu_score(refs, refs, "de")[0].score == pytest.approx(100)
    shouting = [line.upper() for line in refs]     # no ß here: its upper case is SS
    assert tokenized_bleu_score(shouting, refs, "de")[0].score == pytest.approx(100)
    assert sacrebleu_score(shouting, refs, lowercase=False)[0].score < 100


def test_hand_computed_score_differs_from_sacrebleu():
    """Moses splits "dog's" into dog &apos;s: 7 hypothesis and 8 reference tokens, where
    sacreBLEU's 13a tokenizer keeps "dog's" (6 and 7)."""
    hyp, ref = ["The dog's ball is red."], ["The dog's ball is very red."]
    score, signature = tokenized_bleu_score(hyp, ref, "en")
    assert (score.counts, score.totals, score.sys_len, score.ref_len) == ([7, 5, 3, 2], [7, 6, 5, 4], 7, 8)
    # BP exp(1 - 8/7) times the geometric mean of 7/7, 5/6, 3/5, 2/4
    by_hand = 100 * math.exp(1 - 8 / 7) * (1 * 5 / 6 * 3 / 5 * 2 / 4) ** 0.25
    assert score.score == pytest.approx(by_hand, abs=1e-9)      # 61.30
    sacre = sacrebleu_score(hyp, ref, lowercase=True)[0]
    assert (sacre.sys_len, sacre.ref_len) == (6, 7)
    assert sacre.score == pytest.approx(100 * math.exp(1 - 7 / 6) * (1 * 4 / 5 * 2 / 4 * 1 / 3) ** 0.25)  # 51.15
    assert score.format(signature=signature).startswith(
        f"{TOKENIZED_BLEU_NAME}|moses:lc.norm.tok.en|sacremoses:")
    assert "|case:lc|" in signature and "|tok:none|smooth:none|" in signature


def test_no_smoothing_as_fairseq():
    """No matching 4-gram gives 0, as fairseq's BLEU4 and multi-bleu.perl (sacreBLEU's default smooths)."""
    hyp, ref = ["a dog runs fast ."], ["a dog runs very fast ."]
    assert tokenized_bleu_score(hyp, ref, "en")[0].score == 0
    assert sacrebleu_score(hyp, ref, lowercase=True)[0].score > 0
