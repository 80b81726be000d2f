"""The explorer: one self-contained HTML page (data and script inline, nothing fetched) that shows
what a model did with some sentences: every layer's and head's attention, the n-best list.

    translator = Translator(model, src_vocab, trg_vocab, tokenizer, beam=5, nbest=3)
    records = translator.translations(lines)                 # what translate prints
    data = explorer_data(translator, lines, records)         # the page's data, JSON-ready
    write_page("page.html", data)                            # open it from disk in a browser
    write_json("data.json", data)                            # for a notebook, or for...
    write_page("viewer.html")                                # ...the empty page: it loads such files

Per sentence: the source tokens (framed by <sos>/<eos>), the encoder self-attention of every
layer and head, and per hypothesis of the search (best first, with its score): the target
tokens, each one's log-probability, every layer's decoder self-attention and encoder-decoder
attention. They come from one teacher-forced pass over the sentence's hypotheses
(tinynmt/decoding/scoring.py:reference_log_probs), during which every MultiHeadAttentionLayer's
forward is wrapped to keep its weights (recorded_attention): the numbers the decoding steps
computed, with no explorer code in the model's forwards. Decoder position i reads tokens[i] and predicts
tokens[i + 1], whose log-probability is log_probs[i].

JSON layout (format "tinynmt.explorer", version 1), numbers rounded to ROUND decimals:
    {"format", "version", "model": {...sizes}, "decoding": {beam, lenpen, max_len, nbest},
     "sentences": [{"source", "src_tokens", "src_unknown", "dropped",
                    "encoder_attention": (L, H, S, S),
                    "hypotheses": [{"text", "score", "finished", "tokens", "log_probs": (T,),
                                    "decoder_attention": (L, H, T, T),
                                    "cross_attention": (L, H, T, S)}]}]}
A sentence without tokens has no src_tokens and no hypotheses (it was not translated).

Legend: L layers, H heads, S source length and T decoder positions (<sos>/<eos> included), K hypotheses.
"""
import json
import math
import os
import stat
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..data import EOS_IDX, SOS_IDX, UNK_IDX, pad_sequences
from ..decoding import Ensemble, reference_log_probs
from ..training.checkpoint import atomic_write

FORMAT, VERSION = "tinynmt.explorer", 1
ROUND = 5                                # decimals kept: the page shows 3
DATA_SLOT = "__EXPLORER_DATA__"          # where the template takes the JSON


def keeping_attention(forward, weights, key):
    """`forward` of a MultiHeadAttentionLayer, which returns (x, attention (K, H, Q, Kv)), that also
    keeps the weights in weights[key]."""
    def forward_and_keep(*args, **kwargs):
        x, attention = forward(*args, **kwargs)
        weights[key] = to_numpy(attention.data)
        return x, attention
    return forward_and_keep


@contextmanager
def recorded_attention(model):
    """Within the block, the attention weights of the last forward pass of every attention layer,
    keyed ("encoder" | "decoder" | "cross", layer index).

    Each layer object gets its own `forward` attribute for the block (it shadows the class's
    method, the tutorial's lines, which still does the work), and loses it after."""
    weights = {}
    sublayers = [("encoder", i, layer.self_attention) for i, layer in enumerate(model.encoder.layers)]
    for i, layer in enumerate(model.decoder.layers):
        sublayers += [("decoder", i, layer.self_attention), ("cross", i, layer.encoder_attention)]
    try:
        for kind, i, attention in sublayers:
            attention.forward = keeping_attention(attention.forward, weights, (kind, i))
        yield weights
    finally:
        for _, _, attention in sublayers:
            attention.__dict__.pop("forward", None)


def rounded(array):
    """A float array as nested lists of Python floats, ROUND decimals (JSON stays short)."""
    return np.round(np.asarray(array, dtype=np.float64), ROUND).tolist()


def finite_or_none(x):
    """JSON has no inf or nan: those become null."""
    return round(float(x), 6) if math.isfinite(x) else None


def layers_of(weights, kind, row, queries, keys):
    """One hypothesis' weights of every layer of a kind, cut to its positions -> (L, H, Q, Kv)."""
    layers = sorted(i for k, i in weights if k == kind)
    return [rounded(weights[kind, i][row, :, :queries, :keys]) for i in layers]


def sentence_data(model, trg_vocab, line, record, dropped=0):
    """The explorer's data of one sentence, from its Translation record (Translator.translations)."""
    hypotheses = [h for h in record.nbest if math.isfinite(h.score)]   # -inf: a row beam search left empty
    entry = {"source": line, "src_tokens": [], "src_unknown": [], "dropped": dropped, "hypotheses": []}
    if not record.src_tokens or not hypotheses:
        return entry
    framed = [[SOS_IDX, *h.ids, *([EOS_IDX] if h.finished else [])] for h in hypotheses]
    src = np.array([record.src_ids] * len(framed))                     # (K, S)
    with recorded_attention(model) as weights:
        log_probs = to_numpy(reference_log_probs(model, src, pad_sequences(framed)))  # (K, T)
    if len(weights) != len(model.encoder.layers) + 2 * len(model.decoder.layers):
        raise RuntimeError("the teacher-forced pass did not run every attention layer once")
    S = len(record.src_ids)
    entry["src_tokens"] = ["<sos>", *record.src_tokens, "<eos>"]
    entry["src_unknown"] = [i == UNK_IDX for i in record.src_ids]
    entry["encoder_attention"] = layers_of(weights, "encoder", 0, S, S)   # the same source in every row
    for k, (h, ids) in enumerate(zip(hypotheses, framed)):
        T = len(ids) - 1                                                  # positions read: all but the last
        entry["hypotheses"].append({
            "text": h.text, "score": finite_or_none(h.score), "finished": h.finished,
            "tokens": trg_vocab.decode(ids), "log_probs": [finite_or_none(x) for x in log_probs[k, :T]],
            "decoder_attention": layers_of(weights, "decoder", k, T, T),
            "cross_attention": layers_of(weights, "cross", k, T, S)})
    return entry


def explorer_data(translator, lines, records, checkpoint=None):
    """The page's data for `lines` and their Translation records from `translator` (one model,
    not an Ensemble); `checkpoint` names where the model came from."""
    model = translator.model
    if isinstance(model, Ensemble):
        raise ValueError("the explorer shows one model's attention: give it one model, not an Ensemble")
    sentences = []
    for line, record in zip(lines, records):
        dropped = len(translator.tokenizer.tokenize(line)) - len(record.src_tokens) if record.src_tokens else 0
        sentences.append(sentence_data(model, translator.trg_vocab, line, record, dropped))
    enc, dec = model.encoder.layers, model.decoder.layers
    return {"format": FORMAT, "version": VERSION, "checkpoint": None if checkpoint is None else str(checkpoint),
            "model": {"enc_layers": len(enc), "dec_layers": len(dec), "enc_heads": enc[0].self_attention.n_heads,
                      "dec_heads": dec[0].self_attention.n_heads, "hid_dim": enc[0].self_attention.hid_dim},
            "decoding": {"beam": translator.beam, "lenpen": translator.lenpen, "max_len": translator.max_steps,
                         "nbest": translator.nbest},
            "sentences": sentences}


def to_json(data):
    """The data as JSON text (UTF-8 characters kept; no nan or inf)."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def page_html(data=None):
    """The page as HTML text: the template with `data` inline (None: the empty viewer)."""
    template = resources.files(__package__).joinpath("explorer.html").read_text(encoding="utf-8")
    # inside <script>, "</script>" or "<!--" in a sentence would end the block: no "<" stays raw
    inline = "null" if data is None else to_json(data).replace("<", "\\u003c")
    before, slot, after = template.partition(DATA_SLOT)
    assert slot, f"explorer.html has no {DATA_SLOT}"
    return before + inline + after


def write_text(path, text):
    """Write UTF-8 text to `path` atomically (a temporary file beside it, then renamed), through a
    symlink to the file it names, keeping a replaced file's mode; OSError if it is not a file."""
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        raise OSError(f"{path} is not a regular file")
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    atomic_write(target, lambda f: f.write(text.encode("utf-8")))
    if mode is not None:
        os.chmod(target, mode)


def write_page(path, data=None):
    """Write the explorer page (data None: the empty viewer, which loads a JSON file)."""
    write_text(path, page_html(data))


def write_json(path, data):
    """Write the page's data as a JSON file, for the empty viewer or a notebook."""
    write_text(path, to_json(data) + "\n")
