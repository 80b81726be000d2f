"""The tutorial's display_attention, saved to a file: one panel per head, in a grid.

    tokens, attention = translate_sentence(model, sentence, src_vocab, trg_vocab, tokenizer)
    plot_attention(src_tokens, tokens + ["<eos>"], attention, "attention.png")

Columns are the source tokens framed by <sos>/<eos> (what the encoder saw), rows the
output tokens (the last row predicted <eos> when the output ended with it). Drawn with
matplotlib's Agg canvas, without pyplot, so no window opens and no global backend changes;
the file is replaced atomically (tinynmt/files.py).
"""
import math
from pathlib import Path

import numpy as np

from ..files import atomic_write


def grid_shape(n_heads):
    """(rows, cols) for n_heads panels: two columns as in the tutorial (8 heads -> 4 x 2)."""
    cols = 1 if n_heads == 1 else 2
    return math.ceil(n_heads / cols), cols


def plot_attention(src_tokens, out_tokens, attention, path, title=None):
    """Save attention (H, T_out, S) as one heat map per head; src_tokens exclude <sos>/<eos>."""
    try:
        from matplotlib import ticker
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("drawing attention needs matplotlib: pip install matplotlib "
                           "(or the plot extra, pip install -e \".[plot]\")") from None
    attention = np.asarray(attention)
    n_heads, n_out, n_src = attention.shape
    x_labels = ["<sos>", *src_tokens, "<eos>"]
    if len(x_labels) != n_src or len(out_tokens) != n_out:
        raise ValueError(f"attention of shape {attention.shape} does not match {len(x_labels)} "
                         f"source labels (with <sos>/<eos>) and {len(out_tokens)} output labels")
    rows, cols = grid_shape(n_heads)
    # the tutorial's 15 x 25 inches for 8 heads; scaled with the panels and the sentence length
    width = max(6.0, cols * (1.5 + 0.45 * n_src))
    height = max(4.0, rows * (1.5 + 0.4 * n_out))
    fig = Figure(figsize=(width, height))
    for head in range(n_heads):
        ax = fig.add_subplot(rows, cols, head + 1)
        ax.matshow(attention[head], cmap="bone")                # colour scale per head, as the tutorial
        ax.set_title(f"head {head + 1}", fontsize=10)
        ax.xaxis.set_major_locator(ticker.FixedLocator(range(n_src)))
        ax.yaxis.set_major_locator(ticker.FixedLocator(range(n_out)))
        ax.set_xticklabels(x_labels, rotation=45, ha="left", fontsize=9)
        ax.set_yticklabels(list(out_tokens), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    kind = Path(path).suffix[1:].lower() or "png"          # the format the name asks for
    atomic_write(path, lambda f: fig.savefig(f, format=kind, dpi=100))
    return path
