"""Batches of padded id arrays, bucketed by length like torchtext's BucketIterator.

    src_ids = encode_sentences(src_tokens, src_vocab)      # [[SOS, ..., EOS], ...]
    ids = encode_sentences(["Ein Mann."], vocab, tokenizer=tok)   # raw text, tokenized first
    batches = Batches(src_ids, trg_ids, batch_size=64, shuffle=True, seed=1234)
    for batch in batches.epoch(k):                         # k = 0, 1, 2, ...
        batch.src, batch.trg                               # (B, S), (B, T) int64, batch-first
        batch.n_trg_tokens                                 # non-pad ids in trg
    for batch in Batches(src_ids, trg_ids):                # evaluation: sorted, no shuffle
        ...

Training (shuffle=True), as BucketIterator did: each epoch, shuffle all sentence indices,
cut them into pools of `pool_size` sentences (default 100 * batch_size), sort each pool
by length, cut it into batches, and shuffle the order of all the batches. Every sentence
appears exactly once per epoch; batches hold sentences of similar length (little padding)
but differ from epoch to epoch. The randomness comes from np.random.default_rng([seed, k])
only, so epoch k is the same whenever it is asked for (resuming at epoch k needs nothing
but k). Evaluation (shuffle=False): one global sort by length (then index), the same
batches every time.

Batch size: `batch_size` sentences (the tutorial's 64), or with `max_tokens` a token
budget: the padded size max(S, T) * B stays <= max_tokens (batch_size, unless None,
still caps B). "By length" is (source length, target length) for sentence counts, as
BucketIterator; under a token budget it is (max(S, T), target length), the size the
budget counts, so neither side's padding grows (Multi30k en->de, 10k BPE, 8,192 tokens:
sorted by source length, 34% of the target positions were pad and a step held 5,150
target tokens; sorted by max(S, T), 9% and 7,160, for the same padded size). Rows are
padded with PAD_IDX after the sentence; arrays are C-contiguous np.int64, ready for numpy
or cupy. With trg_ids=None (translating), batch.trg is None.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Iterator, List, Optional, Sequence

import numpy as np

from .errors import DataError
from .tokenize import Tokenizer
from .vocab import EOS_IDX, PAD_IDX, SOS_IDX, Vocab

# Legend: B batch, S source length, T target length, N sentences in the split.


def encode_sentences(sentences: Sequence, vocab: Vocab, tokenizer: Optional[Tokenizer] = None) -> List[List[int]]:
    """Map token lists (or strings, with `tokenizer`) to ids framed by <sos> ... <eos>."""
    encode = vocab.encode
    if tokenizer is not None:
        return [[SOS_IDX, *encode(tokenizer.tokenize(text)), EOS_IDX] for text in sentences]
    if sentences and isinstance(sentences[0], str):
        raise DataError("encode_sentences got strings: pass tokenizer=... or lists of tokens")
    return [[SOS_IDX, *encode(tokens), EOS_IDX] for tokens in sentences]


def pad_sequences(id_lists: Sequence[Sequence[int]], pad_idx: int = PAD_IDX) -> np.ndarray:
    """Stack id lists into one (B, L) int64 array, padding each row on the right."""
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    out = np.full((len(id_lists), int(lengths.max(initial=0))), pad_idx, dtype=np.int64)  # (B, L)
    mask = np.arange(out.shape[1]) < lengths[:, None]  # (B, L): True on real tokens
    out[mask] = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
    return out


@dataclass
class Batch:
    """One batch: padded src (B, S) and trg (B, T) ids, and where the rows came from."""

    src: np.ndarray            # (B, S) int64
    trg: Optional[np.ndarray]  # (B, T) int64, or None when there is no target side
    index: np.ndarray          # (B,) int64: row b is sentence index[b] of the split
    n_src_tokens: int          # non-pad ids in src, <sos>/<eos> included
    n_trg_tokens: int          # non-pad ids in trg, <sos>/<eos> included

    def __len__(self) -> int:
        return self.src.shape[0]

    @property
    def n_pred_tokens(self) -> int:
        """Target ids the decoder predicts (non-pad trg[:, 1:]): a per-token loss's denominator."""
        return self.n_trg_tokens - len(self) if self.trg is not None else 0


class _Packed:
    """All sentences of one side in one flat int64 array, with offsets and lengths."""

    def __init__(self, id_lists: Sequence[Sequence[int]], side: str):
        n = len(id_lists)
        self.lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=n)  # (N,)
        if n and self.lengths.min() == 0:
            raise DataError(f"{side} sentence {int(np.argmin(self.lengths))} is empty; "
                            "frame sentences with encode_sentences")
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])  # (N + 1,)
        self.flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(self.offsets[-1]))
        if self.flat.size and self.flat.min() < 0:
            raise DataError(f"{side} ids must be >= 0, found {int(self.flat.min())}")

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """Return the sentences idx as one padded (B, L) array."""
        return gather_padded(self.flat, self.offsets[idx], self.lengths[idx])


def index_dtype(n: int) -> np.dtype:
    """int32 for indices below 2**31 (half the memory of int64 for a plan over N sentences), else int64."""
    return np.dtype(np.int32 if n <= np.iinfo(np.int32).max else np.int64)


def gather_padded(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sentences flat[start:start + length] for each (start, length) (B,) -> one (B, L) int64
    array padded with PAD_IDX."""
    cols = np.arange(int(lengths.max()))                             # (L,)
    mask = cols < lengths[:, None]                                   # (B, L)
    out = np.full(mask.shape, PAD_IDX, dtype=np.int64)               # (B, L)
    out[mask] = flat[(starts[:, None] + cols)[mask]]
    return out


class Batches:
    """Length-bucketed batches over a split; `epoch(k)` yields epoch k's batches."""

    def __init__(self, src_ids: Sequence[Sequence[int]], trg_ids: Optional[Sequence[Sequence[int]]] = None,
                 batch_size: Optional[int] = 64, max_tokens: Optional[int] = None, shuffle: bool = False,
                 seed: int = 1234, pool_size: Optional[int] = None):
        if trg_ids is not None and len(src_ids) != len(trg_ids):
            raise DataError(f"{len(src_ids)} source sentences but {len(trg_ids)} target sentences")
        self._set_up(_Packed(src_ids, "source"), _Packed(trg_ids, "target") if trg_ids is not None else None,
                     batch_size, max_tokens, shuffle, seed, pool_size)

    def _set_up(self, src, trg, batch_size, max_tokens, shuffle, seed, pool_size):
        """Check the sizes, keep the packed sides, and plan evaluation's batches once."""
        if batch_size is None and max_tokens is None:
            raise DataError("give batch_size, max_tokens or both")
        for name, value in (("batch_size", batch_size), ("max_tokens", max_tokens), ("pool_size", pool_size)):
            if value is not None and int(value) < 1:
                raise DataError(f"{name} must be a positive integer, got {value}")
        if int(seed) < 0:
            raise DataError(f"seed must be >= 0, got {seed}")
        self.src, self.trg = src, trg
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.pool_size = int(pool_size or 100 * (batch_size or 64))
        trg_len = self.trg.lengths if self.trg is not None else np.zeros_like(self.src.lengths)
        self._width = np.maximum(self.src.lengths, trg_len)  # (N,): a row's padded-size need, lengths' type
        if max_tokens is not None and len(src.lengths) and self._width.max() > max_tokens:
            i = int(np.argmax(self._width))
            raise DataError(f"sentence {i} needs {int(self._width[i])} positions, more than "
                            f"max_tokens={max_tokens}; raise max_tokens or lower max_len")
        self._trg_len = trg_len
        n = len(src.lengths)
        self._eval_plan = None if self.shuffle else self._cut(self._sorted(np.arange(n, dtype=index_dtype(n))))

    def __len__(self) -> int:
        """Batches per epoch (in max_tokens training mode it varies a little: this is epoch 0's)."""
        return len(self.plan(0))

    def __iter__(self) -> Iterator[Batch]:
        if self.shuffle:
            raise TypeError("shuffled Batches have a different order each epoch: iterate batches.epoch(k)")
        return self.epoch(0)

    def _sorted(self, idx: np.ndarray) -> np.ndarray:
        """Stable sort of sentence indices by (source or padded length, target length)."""
        first = self.src.lengths if self.max_tokens is None else self._width
        return idx[np.lexsort((self._trg_len[idx], first[idx]))]

    def _cut(self, order: np.ndarray) -> List[np.ndarray]:
        """Cut length-sorted indices into batches by sentence count or token budget."""
        if self.max_tokens is None:
            return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        # Greedy cut, a Python loop over sentences: it runs once per epoch, not per step.
        cap = self.batch_size or len(order)
        batches, start, widest = [], 0, 0
        for i, w in enumerate(self._width[order].tolist()):
            widest_with = max(widest, w)
            if i > start and (widest_with * (i - start + 1) > self.max_tokens or i - start == cap):
                batches.append(order[start:i])
                start, widest_with = i, w
            widest = widest_with
        if start < len(order):
            batches.append(order[start:])
        return batches

    def plan(self, epoch: int = 0) -> List[np.ndarray]:
        """Return epoch `epoch`'s batches as arrays of sentence indices (int32 below 2**31), in order."""
        if not self.shuffle:
            return self._eval_plan
        rng = np.random.default_rng([self.seed, int(epoch)])
        n = len(self.src.lengths)
        perm = np.arange(n, dtype=index_dtype(n))       # (N,)
        rng.shuffle(perm)                               # what rng.permutation(n) does, in int32
        batches: List[np.ndarray] = []
        for p in range(0, len(perm), self.pool_size):
            batches.extend(self._cut(self._sorted(perm[p:p + self.pool_size])))
        return [batches[i] for i in rng.permutation(len(batches))]

    def make_batch(self, idx: np.ndarray) -> Batch:
        """Build the padded Batch for sentence indices `idx`."""
        idx = np.asarray(idx, dtype=np.int64)
        src = self.src.gather(idx)                                   # (B, S)
        trg = self.trg.gather(idx) if self.trg is not None else None  # (B, T)
        n_trg = int(self.trg.lengths[idx].sum()) if self.trg is not None else 0
        return Batch(src, trg, idx, int(self.src.lengths[idx].sum()), n_trg)

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        """Yield epoch `epoch`'s batches (shuffled by seed and epoch, or sorted for evaluation)."""
        for idx in self.plan(epoch):
            yield self.make_batch(idx)
