"""The machine-readable lines of `tinynmt.translate --nbest` and `--score-reference` (and of
`tinynmt.evaluate --score-reference`), tab-separated; scores are log-probabilities in nats.

    S-0<TAB>Ein Mann schläft.                  --nbest 2: the input line i (from 0), then
    H-0<TAB>-0.412345<TAB>a man is sleeping .  N hypotheses, best first, with the search's
    H-0<TAB>-0.587654<TAB>a man sleeps .       final (length-penalised) score
    -4.123456<TAB>-0.824691<TAB>-0.1234 ...    --score-reference: sum, mean per token, each token's
"""
import numpy as np


def nbest_lines(number, source, record, nbest):
    """S-i and nbest H-i lines of input line `number`, `source`, from its Translation record;
    a line that was not translated (no tokens) gets nbest `H-i<TAB>nan<TAB>` lines."""
    hypotheses = [(h.score, h.text) for h in record.nbest] or [(float("nan"), "")] * nbest
    return f"S-{number}\t{source}\n" + "".join(f"H-{number}\t{score:.6f}\t{text}\n" for score, text in hypotheses)


def score_line(log_probs):
    """One --score-reference line from the log-probs of a reference's tokens, <eos> last
    (None, a pair with an empty side: `nan<TAB>nan<TAB>`)."""
    if log_probs is None:
        return "nan\tnan\t\n"
    total = float(log_probs.sum(dtype=np.float64))
    return f"{total:.6f}\t{total / len(log_probs):.6f}\t{' '.join(f'{x:.4f}' for x in log_probs.tolist())}\n"
