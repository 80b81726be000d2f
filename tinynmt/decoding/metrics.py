"""How good a model's translations are: sacreBLEU of decoded text, the tokenized BLEU that
papers on Multi30k report, and the teacher-forced loss of references.

    bleu, hypotheses, seconds = evaluate_bleu(model, src_lines, ref_lines, src_vocab, trg_vocab, tokenizer)
    tok_bleu, signature = tokenized_bleu_score(hypotheses, ref_lines, "en")
    result = evaluate_loss(model, src_lines, trg_lines, src_vocab, trg_vocab, tokenizer)

BLEU: sacrebleu.corpus_bleu of the detokenized hypotheses against the raw reference lines,
lowercased when the model's tokenizer lowercases. Tokenized BLEU (TOKENIZED_BLEU_NAME): both
sides made as Multi30k's data/task1/tok files were (moses_tokenize), then BLEU over their
whitespace tokens, as fairseq's generate.py, multi-bleu.perl and multeval score such files;
the figure papers using those files publish (e.g. Wu et al. 2021, fairseq's "BLEU4").
Loss: cross-entropy of the references (padding ignored, no label smoothing), batched and
averaged as training's evaluate() does. The trainer and `python -m tinynmt.evaluate`
(programs/evaluate.py) both use these.
"""
import math
import re
import time
from importlib.metadata import version
from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module, to_numpy
from ..data import Batches
from ..data.textfile import check_parallel
from .incremental import max_positions
from .scoring import reference_log_probs
from .translator import Translator, encode_sentence


def sacrebleu_score(hypotheses, references, lowercase):
    """sacreBLEU's corpus BLEU, one reference per line -> (BLEUScore, signature string)."""
    from sacrebleu.metrics import BLEU
    metric = BLEU(lowercase=lowercase)
    score = metric.corpus_score(list(hypotheses), [list(references)])
    return score, str(metric.get_signature())


TOKENIZED_BLEU_NAME = "BLEU (Moses-tokenized, lowercased; fairseq/multeval style)"

# Where the Moses snapshot Multi30k used (3a0631a, 2017) and sacremoses differ: a ‘ ’ or ‚ not
# between two letters becomes " there (newer Moses and sacremoses: '). Run first, in the perl
# script's order, so sacremoses' own rules find none. (sacremoses' perl_parity covers ’ only, and
# up to 0.1.1 it rewrites the class's tables: every normalizer in the process would change.)
MOSES_2017_QUOTES = [(re.compile(r"([a-zA-Z])‘([a-zA-Z])"), r"\1'\2"),
                     (re.compile(r"([a-zA-Z])’([a-zA-Z])"), r"\1'\2"),
                     (re.compile("[‘‚’]"), '"')]


def moses_tokenize(lines, lang):
    """Multi30k's data/task1/tok recipe on raw lines (lowercase.perl | normalize-punctuation.perl
    -l LANG | tokenizer.perl -l LANG, Moses 3a0631a) -> tokenized lines."""
    from sacremoses import MosesPunctNormalizer, MosesTokenizer
    normalizer, tokenizer = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)
    out = []
    for line in lines:
        line = line.lower()
        for pattern, replacement in MOSES_2017_QUOTES:
            line = pattern.sub(replacement, line)
        # The "\n": the perl script sees each line with its newline, so its German/French rule
        # (\.+)"(\s*[^<]) also turns a final `."` into `".` (without it 6 of train.de's lines differ).
        line = normalizer.normalize(line + "\n")
        # tokenizer.perl's defaults: no -a (hyphens stay inside words), escaping on (&apos; &quot;).
        out.append(tokenizer.tokenize(line, aggressive_dash_splits=False, escape=True, return_str=True))
    return out


def tokenized_bleu_score(hypotheses, references, lang):
    """BLEU of lowercased Moses-tokenized text, one reference per line -> (BLEUScore named
    TOKENIZED_BLEU_NAME, signature string)."""
    from sacrebleu.metrics import BLEU
    # Already tokenized: split on spaces only. No smoothing, as fairseq's BLEU4 and multi-bleu.perl.
    metric = BLEU(lowercase=True, tokenize="none", smooth_method="none", force=True)
    score = metric.corpus_score(moses_tokenize(hypotheses, lang), [moses_tokenize(references, lang)])
    score.name = TOKENIZED_BLEU_NAME
    signature = f"moses:lc.norm.tok.{lang}|sacremoses:{version('sacremoses')}|{metric.get_signature()}"
    return score, signature


def evaluate_bleu(model, src_lines, ref_lines, src_vocab, trg_vocab, tokenizer, beam=1, lenpen=1.0,
                  batch_size=128, max_steps=None, lowercase=None, warn=None):
    """Translate src_lines and score them against ref_lines -> (BLEUScore, hypotheses, seconds).

    lowercase=None follows the tokenizer. The score's `signature` attribute holds
    sacreBLEU's signature string (nrefs:1|case:lc|...); seconds is the translation time.
    """
    check_parallel(src_lines, ref_lines, "source", "references")
    if lowercase is None:
        lowercase = tokenizer.lower
    translator = Translator(model, src_vocab, trg_vocab, tokenizer, beam=beam, lenpen=lenpen,
                            max_steps=max_steps, batch_size=batch_size, warn=warn)
    start = time.perf_counter()
    hypotheses = translator.translate(src_lines)
    seconds = time.perf_counter() - start
    score, signature = sacrebleu_score(hypotheses, ref_lines, lowercase)
    score.signature = signature
    return score, hypotheses, seconds


def loss_rule(max_tokens):
    """How a split's loss is averaged: "batch_mean" for batches of sentences (the tutorial's
    evaluate()), "per_token" under a token budget, where a split is a few uneven batches."""
    return "batch_mean" if max_tokens is None else "per_token"


@dataclass
class LossResult:
    """Teacher-forced test loss, two ways."""

    loss: float        # as the trainer's evaluate(): mean of the batch losses (per token under max_tokens)
    token_nll: float   # cross-entropy per predicted token, no label smoothing
    n_tokens: int      # predicted target tokens (<eos> included)


def evaluate_loss(model, src_lines, trg_lines, src_vocab, trg_vocab, tokenizer, batch_size=64,
                  max_tokens=None):
    """Teacher-forced cross-entropy (no label smoothing) over (source, reference) lines -> LossResult;
    `model` may be an Ensemble (its log-probabilities are those of the mean probability).

    Batches as the trainer makes them (Batches, sorted by length); pairs with an empty side
    are skipped, as the data pipeline drops them; over-long sides are cut to the model's positions.
    """
    check_parallel(src_lines, trg_lines, "source", "references")
    src_positions, trg_positions = max_positions(model)
    src_ids, trg_ids = [], []
    for src, trg in zip(src_lines, trg_lines):
        src_tokens, trg_tokens = tokenizer.tokenize(src), tokenizer.tokenize(trg)
        if src_tokens and trg_tokens:
            src_ids.append(encode_sentence(src_tokens, src_vocab, src_positions)[0])
            trg_ids.append(encode_sentence(trg_tokens, trg_vocab, trg_positions)[0])
    if not src_ids:
        return LossResult(math.nan, math.nan, 0)
    sums, counts = [], []
    for batch in Batches(src_ids, trg_ids, batch_size=batch_size, max_tokens=max_tokens):
        sums.append(reference_log_probs(model, batch.src, batch.trg).sum())  # the batch's log-likelihood
        counts.append(batch.n_pred_tokens)
    xp = get_array_module(sums[0])
    nll = -to_numpy(xp.stack(sums)).astype(np.float64)          # (batches,), one transfer for all
    counts = np.array(counts)
    token_nll = float(nll.sum()) / counts.sum()
    loss = token_nll if loss_rule(max_tokens) == "per_token" else float((nll / counts).mean())
    return LossResult(loss, token_nll, int(counts.sum()))


