"""Preparing a parallel corpus: read once, clean, learn BPE and vocabularies, encode every split.

    options = PrepareOptions(tokenizer="bpe", bpe_merges=8000, share_vocab=True, lower=False)
    data = prepare_corpus("xx-a", "yy_b", train="corpus/train", valid="corpus/dev",
                          tests=["corpus/test"], options=options)     # a PreparedData
    save_prepared(data, "data/xx-yy")      # prepare_io.py; load_prepared reads it back

Each file is read once into chunk ids (corpus.py). From then on the work is per distinct
chunk or in arrays: the BPE merges are learned from word counts (each word counted once,
weighted by how often its chunks occur in the training split, both sides, before
cleaning, as BPETokenizer.learn would count the raw lines); each distinct chunk is cut into
subword pieces once; pair lengths, cleaning (clean.py), the vocabularies' token counts and
the encoding are NumPy operations over all lines. The result equals build_dataset
(tinynmt.data.dataset) on the same lines and options: the same merges, vocabularies, kept
pairs and ids.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..options import ConfigError, check_fields, length_ratio, option, positive
from .bpe import BPETokenizer, learn_merges
from .clean import check_limits, clean_pairs, require_pairs
from .corpus import SHOW_INVALID, ChunkTable, SideText, check_label, find_side, key_text, read_side
from .dataset import VocabOptions, _check_tokenizer, check_vocabularies
from .errors import DataError
from .prepared import PackedSide, PreparedData, PreparedSplit, id_dtype
from .tokenize import get_tokenizer
from .vocab import EOS_IDX, SOS_IDX, Vocab


@dataclass
class PrepareOptions(VocabOptions):
    """How a corpus is tokenized, cleaned and turned into vocabularies (the flags of
    `python -m tinynmt.prepare`): VocabOptions' fields, a tokenizer by name (the folder's
    manifest records it), and the cleaning limits below."""

    max_len: Optional[int] = option(100, "drop training pairs with a side of more ids than this, "
                                         "<sos>/<eos> included (the model's positions)", positive)
    max_len_ratio: Optional[float] = option(9.0, "drop training pairs where one side has more than "
                                                 "this many times the other's tokens (Moses' ratio)", length_ratio)
    limit: Optional[int] = option(None, "read only the first N lines of each file (tests, smoke runs)",
                                  positive)

    def check(self) -> None:
        """Raise DataError naming the first bad option (before any file is read)."""
        try:
            check_fields(self)
        except ConfigError as err:
            raise DataError(str(err)) from None
        check_limits(self.max_len, self.max_len_ratio)
        _check_tokenizer(self)


@dataclass
class _SplitText:
    """One split as read: both sides' chunk ids and, per side, each line's length in tokens."""

    name: str
    prefix: str
    src: SideText
    trg: SideText
    src_len: Optional[np.ndarray] = None     # (L,) tokens per line
    trg_len: Optional[np.ndarray] = None


def _ragged(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of arange(starts[i], starts[i] + lengths[i]) over i, without a loop."""
    first = np.cumsum(lengths) - lengths                  # where run i begins in the output
    return np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()))


def _chunk_counts(sides: Sequence[SideText], n_keys: int, keeps=None) -> np.ndarray:
    """(K,) how often each chunk occurs in `sides` (only on the kept lines, when given)."""
    counts = np.zeros(n_keys, dtype=np.int64)
    for s, side in enumerate(sides):
        line = 0
        for ids, n_chunks in side.blocks:
            if keeps is not None:
                ids = ids[np.repeat(keeps[s][line:line + len(n_chunks)], n_chunks)]
            counts += np.bincount(ids, minlength=n_keys)
            line += len(n_chunks)
    return counts


def _line_lengths(side: SideText, n_tok: np.ndarray) -> np.ndarray:
    """(L,) tokens per line: the sum of its chunks' token counts."""
    out = []
    for ids, n_chunks in side.blocks:
        csum = np.concatenate([[0], np.cumsum(n_tok[ids], dtype=np.int64)])
        ends = np.cumsum(n_chunks, dtype=np.int64)
        out.append(csum[ends] - csum[ends - n_chunks])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class _Pieces:
    """Every distinct chunk cut into subword pieces once: flat piece numbers with offsets."""

    def __init__(self, keys: List[str], words_of: Callable, segment: Callable):
        piece_ids = defaultdict(itertools.count().__next__)
        flat: List[int] = []
        self.n_tok = np.zeros(len(keys), dtype=np.int64)          # (K,) pieces per chunk
        for k, key in enumerate(keys):
            pieces = [piece_ids[p] for w in words_of(key) for p in segment(w)]
            flat.extend(pieces)
            self.n_tok[k] = len(pieces)
        self.flat = np.array(flat, dtype=np.int64)                # (sum n_tok,)
        self.starts = np.cumsum(self.n_tok) - self.n_tok          # (K,)
        self.strings = list(piece_ids)                            # piece number -> text

    def counts(self, chunk_counts: np.ndarray) -> Counter:
        """Token counts from chunk counts: each chunk's pieces, as often as the chunk occurs."""
        weights = np.repeat(chunk_counts, self.n_tok)
        per_piece = np.bincount(self.flat, weights=weights, minlength=len(self.strings))
        return Counter({self.strings[i]: int(per_piece[i]) for i in np.flatnonzero(per_piece).tolist()})

    def vocab_ids(self, vocab: Vocab) -> np.ndarray:
        """(sum n_tok,) the vocabulary id of every piece of every chunk."""
        of_piece = np.array(vocab.encode(self.strings), dtype=np.int64)
        return of_piece[self.flat]


def _encode(side: SideText, keep: np.ndarray, line_len: np.ndarray, pieces: _Pieces,
            key_ids: np.ndarray, dtype: np.dtype) -> Tuple[np.ndarray, np.ndarray]:
    """The kept lines of one side as one flat <sos> ... <eos> id array and its offsets."""
    framed = line_len[keep] + 2                                     # (kept,)
    offsets = np.concatenate([[0], np.cumsum(framed)])
    flat = np.empty(int(offsets[-1]), dtype=dtype)
    line, row = 0, 0
    for ids, n_chunks in side.blocks:
        block_keep = keep[line:line + len(n_chunks)]
        cids = ids[np.repeat(block_keep, n_chunks)]                 # chunks of the kept lines
        toks = key_ids[_ragged(pieces.starts[cids], pieces.n_tok[cids])]
        n_rows = int(block_keep.sum())
        starts = offsets[row:row + n_rows]
        lengths = framed[row:row + n_rows] - 2
        flat[_ragged(starts + 1, lengths)] = toks
        flat[starts] = SOS_IDX
        flat[starts + lengths + 1] = EOS_IDX
        line, row = line + len(n_chunks), row + n_rows
    return flat, offsets


def _read_split(name: str, prefix, src: str, trg: str, table: ChunkTable, limit, log) -> _SplitText:
    """Read both sides of one split; their line counts must agree."""
    paths = find_side(prefix, src), find_side(prefix, trg)
    sides = [read_side(p, table, keep_text=name != "train", limit=limit) for p in paths]
    a, b = sides
    if a.n_lines != b.n_lines:
        raise DataError(f"parallel files differ in length: {a.file.path} has {a.n_lines:,} lines, "
                        f"{b.file.path} has {b.n_lines:,}; each line must translate the same line of the other file")
    log(f"read {name}: {a.n_lines:,} lines each from {a.file.path} and {b.file.path}")
    return _SplitText(name, str(prefix), a, b)


def test_names(n: int) -> List[str]:
    """Names of n test splits: test, test1, test2, ... (fairseq's)."""
    return ["test"] + [f"test{i}" for i in range(1, n)]


def prepare_corpus(src: str, trg: str, train, valid, tests=(), options: Optional[PrepareOptions] = None,
                   log: Callable[[str], None] = lambda message: None,
                   eval_limit: Optional[int] = None) -> PreparedData:
    """Read, clean and encode PREFIX.src / PREFIX.trg files of every split (see the module docstring).

    eval_limit: read only the first N lines of the val and test files (else options.limit)."""
    options = options or PrepareOptions()
    options.check()
    for label in (src, trg):
        check_label(label)
    if src == trg:
        raise DataError(f"source and target language are both {src!r}; name two different labels")
    for prefix in (train, valid, *tests):     # every file exists before any is read
        find_side(prefix, src), find_side(prefix, trg)
    words = get_tokenizer("unicode" if options.tokenizer == "bpe" else options.tokenizer, lower=False)
    table = ChunkTable(get_tokenizer(options.tokenizer, lower=options.lower))
    names = ["train", "val", *test_names(len(tests))]
    limits = [options.limit] + [options.limit if eval_limit is None else eval_limit] * (len(names) - 1)
    splits = [_read_split(n, p, src, trg, table, limit, log)
              for n, p, limit in zip(names, (train, valid, *tests), limits)]
    keys = table.keys()
    words_of = (lambda key: words.tokenize(key_text(key)))   # keys are lowercased already
    train_counts = _chunk_counts([splits[0].src, splits[0].trg], len(keys))
    if options.tokenizer == "bpe":
        word_counts: Counter = Counter()
        for k in np.flatnonzero(train_counts).tolist():
            for word in words_of(keys[k]):
                word_counts[word] += int(train_counts[k])
        tokenizer = BPETokenizer(lower=options.lower, merges=learn_merges(word_counts, options.bpe_merges))
        log(f"learned {len(tokenizer.merges):,} BPE merges from {len(word_counts):,} distinct words")
        pieces = _Pieces(keys, words_of, tokenizer.segment)
    else:
        tokenizer = get_tokenizer(options.tokenizer, lower=options.lower)
        pieces = _Pieces(keys, words_of, lambda word: (word,))
    keeps = []
    for split in splits:
        split.src_len, split.trg_len = _line_lengths(split.src, pieces.n_tok), _line_lengths(split.trg, pieces.n_tok)
        keep, counts = clean_pairs(split.src_len, split.trg_len, split.src.invalid_mask(), split.trg.invalid_mask(),
                                   options.max_len, options.max_len_ratio, is_train=split.name == "train")
        require_pairs(split.name, counts)
        keeps.append((keep, counts))
    train_keep = keeps[0][0]
    src_counts = _chunk_counts([splits[0].src], len(keys), [train_keep])
    trg_counts = _chunk_counts([splits[0].trg], len(keys), [train_keep])
    vocab_args = dict(min_freq=options.min_freq, max_size=options.max_size)
    # Vocab.build counts with Counter.update, which adds a mapping's counts: one "list" of all
    if options.share_vocab:
        src_vocab = trg_vocab = Vocab.build([pieces.counts(src_counts + trg_counts)], **vocab_args)
    else:
        src_vocab = Vocab.build([pieces.counts(src_counts)], **vocab_args)
        trg_vocab = Vocab.build([pieces.counts(trg_counts)], **vocab_args)
    check_vocabularies(src_vocab, trg_vocab, keeps[0][1]["kept"], options.min_freq, options.max_size)
    prepared = []
    for split, (keep, counts) in zip(splits, keeps):
        sides = []
        for side, line_len, vocab in ((split.src, split.src_len, src_vocab), (split.trg, split.trg_len, trg_vocab)):
            flat, offsets = _encode(side, keep, line_len, pieces, pieces.vocab_ids(vocab), id_dtype(len(vocab)))
            sides.append(PackedSide(flat, offsets, len(vocab)))
        rows = np.flatnonzero(keep).tolist()
        text = (lambda side: None if side.lines_text is None else [side.lines_text[i] for i in rows])
        prepared.append(PreparedSplit(split.name, *sides, counts, text(split.src), text(split.trg)))
        log(f"{split.name}: {counts['kept']:,} pairs kept")
    manifest = _manifest(src, trg, options, tokenizer, src_vocab, trg_vocab, splits, prepared)
    return PreparedData(src, trg, tokenizer, src_vocab, trg_vocab, prepared[0], prepared[1], prepared[2:], manifest)


def _manifest(src, trg, options, tokenizer, src_vocab, trg_vocab, splits, prepared) -> dict:
    """What manifest.json records: sources with sizes and hashes, options, counts, vocabularies."""
    out = {"format": "tinynmt.prepared", "version": 1, "src": src, "trg": trg,
           "options": dataclasses.asdict(options),
           "tokenizer": {"name": tokenizer.name, "lower": tokenizer.lower,
                         "merges": len(getattr(tokenizer, "merges", ()))},
           "vocab": {"shared": src_vocab is trg_vocab, "src": len(src_vocab), "trg": len(trg_vocab),
                     "src_dtype": id_dtype(len(src_vocab)).name, "trg_dtype": id_dtype(len(trg_vocab)).name},
           "splits": {}}
    for text, split in zip(splits, prepared):
        invalid = sorted(((line, side) for side in (text.src, text.trg) for line in side.invalid),
                         key=lambda pair: pair[0])
        out["splits"][split.name] = {
            "prefix": text.prefix, "files": [text.src.file.to_dict(), text.trg.file.to_dict()],
            "counts": split.counts,
            "tokens": {"src": int(split.src.lengths.sum()), "trg": int(split.trg.lengths.sum())},
            "invalid_utf8_first": [side.where(line) for line, side in invalid[:SHOW_INVALID]]}
    return out
