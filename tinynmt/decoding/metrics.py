"""How good a model's translations are: sacreBLEU of decoded text, and the teacher-forced
loss of references.

    bleu, hypotheses, seconds = evaluate_bleu(model, src_lines, ref_lines, src_vocab, trg_vocab, tokenizer)
    result = evaluate_loss(model, src_lines, trg_lines, src_vocab, trg_vocab, tokenizer)

BLEU: sacrebleu.corpus_bleu of the detokenized hypotheses against the raw reference lines,
lowercased when the model's tokenizer lowercases. Loss: cross-entropy of the references
(padding ignored, no label smoothing), batched and averaged as training's evaluate() does.
The trainer and `python -m tinynmt.evaluate` (programs/evaluate.py) both use these.
"""
import math
import time
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


def evaluate_bleu(model, src_lines, ref_lines, src_vocab, trg_vocab, tokenizer, beam=1, lenpen=1.0,
                  batch_size=128, max_steps=50, lowercase=None, warn=None):
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


@dataclass
class LossResult:
    """Teacher-forced test loss, two ways."""

    loss: float        # mean of the batch losses: the tutorial's (and the trainer's) evaluate()
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
    return LossResult(float((nll / counts).mean()), float(nll.sum()) / counts.sum(), int(counts.sum()))


