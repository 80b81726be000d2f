"""A prepared corpus: every split's token ids in one flat array per side, batched from offsets.

    data = load_prepared("data/xx-yy")     # memory-maps the ids; nothing per sentence in Python
    data.src_vocab, data.trg_vocab, data.tokenizer, data.train, data.val, data.test, data.tests
    for batch in data.train.batches(shuffle=True, seed=1234).epoch(k): ...   # as Split.batches
    data.val.src_text, data.val.trg_text   # raw lines of the kept validation/test pairs (BLEU)

A PreparedSplit is what tinynmt.data.dataset.Split is to a trainer (len, name, batches(),
src_text/trg_text for validation and test, n_empty, n_too_long) without a Python object
per sentence: a side (PackedSide) is one flat array of ids, <sos>/<eos> framed, in the
smallest unsigned type that holds the vocabulary, with each sentence's start (a view of the
offsets, memory-mapped too) and length (in the smallest unsigned type that holds it): a few
bytes a sentence stay in memory, so a million pairs cost little more than a thousand.
PackedBatches forms batches exactly as tinynmt.data.batching.Batches (it is one: the same
plan, cut and padding; only the sides come ready-packed), so training reads the same
batches whether the ids live in lists, in memory or in a memory-mapped file. Under mpiexec
every rank maps the same files and gathers only the rows of its share of each batch.

The folder format (written by save_prepared, see prepare_io.py) is described in
manifest.json; encode_corpus.py makes the data from raw files.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .batching import Batches, gather_padded, index_dtype
from .clean import describe
from .errors import DataError
from .tokenize import Tokenizer
from .vocab import Vocab

# Legend: B batch, L longest sentence in the batch, N sentences in the split.


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds ids 0 .. vocab_size - 1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise DataError(f"a vocabulary of {vocab_size} tokens is too large")


def smallest_uint(largest: int) -> np.dtype:
    """The smallest unsigned integer type that holds 0 .. largest."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def release_pages(array: np.ndarray) -> None:
    """Unmap a read-only memory-mapped array's pages from this process (a no-op in memory)."""
    # They stay in the page cache, and the next read maps them again. A read maps more than the
    # bytes read (Linux 6.18 on ext4 maps a whole large folio: 512 KB here), so without this a
    # few batches of random sentences map all of a large ids file into the process's resident
    # memory (benchmarks/RESULTS.md, issue 23).
    mapping = getattr(array, "_mmap", None)          # np.memmap's mmap.mmap (views share it)
    if mapping is not None and getattr(array, "mode", None) == "r" and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


class PackedSide:
    """One side of a split: the ids of all sentences in one flat array, with starts and lengths."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray, vocab_size: int):
        self.flat = flat                                   # (sum of lengths,) unsigned, maybe a memmap
        self.starts = offsets[:-1]                         # (N,) int64, a view (of the map, if mapped)
        lengths = np.diff(offsets)                         # (N,) int64, for a moment
        self.lengths = lengths.astype(smallest_uint(int(lengths.max(initial=0))))   # (N,) unsigned
        self.vocab_size = vocab_size
        release_pages(offsets)                             # np.diff read them all

    def __len__(self) -> int:
        return len(self.lengths)

    def select(self, rows: np.ndarray) -> "PackedSide":
        """The sentences `rows` only (the flat array is shared, not copied)."""
        side = PackedSide.__new__(PackedSide)
        side.flat, side.vocab_size = self.flat, self.vocab_size
        side.starts = self.starts[rows].astype(index_dtype(len(self.flat)))      # (len(rows),)
        side.lengths = self.lengths[rows]
        release_pages(self.starts)
        return side

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """Return the sentences idx as one padded (B, L) int64 array."""
        out = gather_padded(self.flat, self.starts[idx], self.lengths[idx])      # (B, L)
        release_pages(self.flat)
        release_pages(self.starts)
        if out.size and out.max() >= self.vocab_size:                # ids come from a file: check them
            raise DataError(f"token id {int(out.max())} is out of range for a vocabulary of "
                            f"{self.vocab_size}; the prepared folder is damaged, prepare it again")
        return out

    def packed(self) -> Tuple[np.ndarray, np.ndarray]:
        """(flat ids, offsets) with the sentences back to back (a selected side is compacted)."""
        offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])   # (N + 1,) int64
        if len(self.flat) == offsets[-1] and np.array_equal(self.starts, offsets[:-1]):
            return np.asarray(self.flat), offsets
        run = np.repeat(self.starts - offsets[:-1], self.lengths)               # where each id comes from
        return np.asarray(self.flat[run + np.arange(int(offsets[-1]))]), offsets

    def sentence(self, i: int) -> List[int]:
        """The ids of sentence i (for tests and inspection)."""
        start = int(self.starts[i])
        return [int(x) for x in self.flat[start:start + int(self.lengths[i])]]


class PackedBatches(Batches):
    """Batches (tinynmt.data.batching) over sides already packed: the same plans, cut and padding."""

    def __init__(self, src: PackedSide, trg: Optional[PackedSide] = None, batch_size: Optional[int] = 64,
                 max_tokens: Optional[int] = None, shuffle: bool = False, seed: int = 1234,
                 pool_size: Optional[int] = None):
        # Batches.__init__ packs id lists; these sides come packed, the rest of the set-up is its own
        if trg is not None and len(src) != len(trg):
            raise DataError(f"{len(src)} source sentences but {len(trg)} target sentences")
        self._set_up(src, trg, batch_size, max_tokens, shuffle, seed, pool_size)


@dataclass
class PreparedSplit:
    """One split of a prepared corpus: packed ids per side, raw text for validation and test."""

    name: str
    src: PackedSide
    trg: PackedSide
    counts: Dict[str, int] = field(default_factory=dict)   # lines read, kept, dropped by reason
    src_text: Optional[List[str]] = None                   # raw lines of the kept pairs (not train)
    trg_text: Optional[List[str]] = None

    def __len__(self) -> int:
        return len(self.src)

    @property
    def n_empty(self) -> int:
        return self.counts.get("empty", 0)

    @property
    def n_too_long(self) -> int:
        return self.counts.get("too_long", 0) + self.counts.get("too_long_kept", 0)

    def longest(self) -> int:
        """The most ids in any sentence of either side, <sos>/<eos> included."""
        return int(max(self.src.lengths.max(initial=0), self.trg.lengths.max(initial=0)))

    def select(self, rows: np.ndarray) -> "PreparedSplit":
        """A split of the pairs `rows` only (e.g. the first N, or those that fit the model)."""
        rows = np.asarray(rows, dtype=np.int64)
        text = (lambda lines: None if lines is None else [lines[i] for i in rows.tolist()])
        counts = dict(self.counts, kept=len(rows))
        return PreparedSplit(self.name, self.src.select(rows), self.trg.select(rows), counts,
                             text(self.src_text), text(self.trg_text))

    def batches(self, batch_size: Optional[int] = 64, max_tokens: Optional[int] = None,
                shuffle: bool = False, seed: int = 1234) -> PackedBatches:
        """Return length-bucketed batches over this split (see tinynmt.data.batching)."""
        return PackedBatches(self.src, self.trg, batch_size=batch_size, max_tokens=max_tokens,
                             shuffle=shuffle, seed=seed)


@dataclass
class PreparedData:
    """A prepared corpus: train, val and the test splits, the tokenizer and both vocabularies."""

    src_lang: str
    trg_lang: str
    tokenizer: Tokenizer
    src_vocab: Vocab
    trg_vocab: Vocab
    train: PreparedSplit
    val: PreparedSplit
    tests: List[PreparedSplit] = field(default_factory=list)
    manifest: Dict[str, object] = field(default_factory=dict)

    @property
    def test(self) -> Optional[PreparedSplit]:
        """The first test split (the one training scores), or None."""
        return self.tests[0] if self.tests else None

    def split(self, name: str) -> PreparedSplit:
        """The split called `name`."""
        for split in (self.train, self.val, *self.tests):
            if split.name == name:
                return split
        names = ", ".join(s.name for s in (self.train, self.val, *self.tests))
        raise DataError(f"no split {name!r} in the prepared data; it has {names}")

    def summary(self) -> List[str]:
        """Human-readable lines: split sizes, drops and vocabulary sizes."""
        lines = [f"{self.src_lang}->{self.trg_lang}, tokenizer {self.tokenizer.name} (lower={self.tokenizer.lower})"]
        for split in (self.train, self.val, *self.tests):
            lines.append(f"{split.name}: {describe(split.counts)}")
        if self.src_vocab is self.trg_vocab:
            lines.append(f"vocab {self.src_lang}+{self.trg_lang} (joint): {len(self.src_vocab)}")
        else:
            lines.append(f"vocab {self.src_lang}: {len(self.src_vocab)}, vocab {self.trg_lang}: {len(self.trg_vocab)}")
        return lines
