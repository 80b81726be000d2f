"""Byte-pair encoding (BPE) subwords, learned from training text (Sennrich et al., 2016).

    tok = BPETokenizer.learn(train_de + train_en, num_merges=10000, lower=True)  # joint table
    tok.tokenize("Ein Zebrafell.")        # ['ein', 'zebra@@', 'fell', '.'] (10k on Multi30k)
    tok.detokenize(tok.tokenize(s))       # == UnicodeTokenizer's detokenize(tokenize(s))
    tok.to_dict()                         # {'name': 'bpe', 'lower': True, 'merges': [['e', 'n</w>'], ...]}
    get_tokenizer("bpe")                  # no merges yet: every word split into characters

Pre-tokenization is the `unicode` tokenizer's `regex` pattern (words, numbers, single
punctuation marks), so BPE never merges across words and detokenization reuses its
spacing rules. Markers, as subword-nmt: while learning and applying, a word's last symbol
carries "</w>" (so "en" ending a word and "en" inside one are different symbols); in the
output, every piece but a word's last ends in "@@" ("schl@@ äft"). "@@" cannot end a
whole word because "@" is never part of a pre-tokenized word, so joining is unambiguous.

Learning counts word types once, then repeats: take the most frequent adjacent symbol
pair (ties: the lexicographically smallest pair), merge it everywhere, and update pair
counts only in the words that contained it (a pair -> words index), with a lazy max-heap
for the choice. Applying merges one word greedily, lowest-rank pair first, as
subword-nmt's apply_bpe, with a cache per word. Both languages share one merge table
(learned from src+trg training text together); the vocabularies stay one per side.
"""
from __future__ import annotations

import heapq
from collections import Counter
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from .errors import DataError
from .tokenize import _TOKEN_RE, Tokenizer, UnicodeTokenizer

END = "</w>"    # end-of-word marker on a word's last symbol (learning and applying)
CONT = "@@"     # continuation marker on every output piece but a word's last

Pair = Tuple[str, str]


def count_words(texts: Iterable[str], lower: bool = True) -> Counter:
    """Count pre-tokenized words (the `unicode` tokenizer's tokens) over many sentences."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(_TOKEN_RE.findall(text.lower() if lower else text))
    return counts


def _symbols(word: str) -> Tuple[str, ...]:
    """Split a word into characters, the last one carrying the end-of-word marker."""
    return tuple(word[:-1]) + (word[-1] + END,)


def _merge_word(symbols: Sequence[str], pair: Pair) -> Tuple[str, ...]:
    """Merge every non-overlapping occurrence of `pair`, left to right."""
    a, b = pair
    out: List[str] = []
    i, n = 0, len(symbols)
    while i < n:
        if i + 1 < n and symbols[i] == a and symbols[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def _pairs(symbols: Sequence[str]) -> Counter:
    """Count the adjacent symbol pairs of one word."""
    return Counter(zip(symbols, symbols[1:]))


def learn_merges(word_counts: Dict[str, int], num_merges: int, min_count: int = 2) -> List[Pair]:
    """Learn up to `num_merges` merges; stop early when no pair occurs `min_count` times."""
    if num_merges < 0:
        raise DataError(f"num_merges must be >= 0, got {num_merges}")
    words = [_symbols(w) for w in sorted(word_counts)]  # sorted: the same order every run
    freqs = [word_counts[w] for w in sorted(word_counts)]
    pair_count: Counter = Counter()
    pair_words: Dict[Pair, Set[int]] = {}
    for idx, (symbols, freq) in enumerate(zip(words, freqs)):
        for pair, n in _pairs(symbols).items():
            pair_count[pair] += n * freq
            pair_words.setdefault(pair, set()).add(idx)
    # Max-heap of (-count, pair): equal counts pop the smallest pair first. Entries go
    # stale when a count changes; a popped entry is used only if it still matches.
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges: List[Pair] = []
    while len(merges) < num_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg:
            continue  # stale entry
        if -neg < min_count:
            break
        merges.append(pair)
        changed: Set[Pair] = set()
        for idx in sorted(pair_words.pop(pair)):
            old, freq = words[idx], freqs[idx]
            new = _merge_word(old, pair)
            old_pairs, new_pairs = _pairs(old), _pairs(new)
            for p, n in old_pairs.items():
                pair_count[p] -= n * freq
                changed.add(p)
                if p not in new_pairs and p != pair:
                    pair_words[p].discard(idx)
            for p, n in new_pairs.items():
                pair_count[p] += n * freq
                changed.add(p)
                pair_words.setdefault(p, set()).add(idx)
            words[idx] = new
        for p in changed:
            count = pair_count[p]
            if count > 0:
                heapq.heappush(heap, (-count, p))
            else:
                del pair_count[p]
                pair_words.pop(p, None)
    return merges


class BPETokenizer(Tokenizer):
    """Subword tokenizer: `unicode` pre-tokenization, then BPE merges applied per word."""

    name = "bpe"

    def __init__(self, lower: bool = True, merges: Sequence[Sequence[str]] = ()):
        super().__init__(lower=lower)
        self.merges: List[Pair] = [_check_merge(m) for m in merges]
        self.ranks: Dict[Pair, int] = {m: i for i, m in enumerate(self.merges)}
        self._cache: Dict[str, List[str]] = {}
        self._words = UnicodeTokenizer(lower=lower)

    @classmethod
    def learn(cls, texts: Iterable[str], num_merges: int, lower: bool = True,
              min_count: int = 2) -> "BPETokenizer":
        """Learn a merge table from sentences (pass both languages for a joint table)."""
        return cls(lower=lower, merges=learn_merges(count_words(texts, lower), num_merges, min_count))

    def segment(self, word: str) -> List[str]:
        """Split one pre-tokenized word into pieces, "@@" marking all but the last."""
        pieces = self._cache.get(word)
        if pieces is None:
            symbols = _symbols(word)
            ranks = self.ranks
            while len(symbols) > 1:
                # greedy: the applicable pair learned earliest is merged first
                best = min(zip(symbols, symbols[1:]), key=lambda p: ranks.get(p, len(ranks)))
                if best not in ranks:
                    break
                symbols = _merge_word(symbols, best)
            pieces = [s + CONT for s in symbols[:-1]] + [symbols[-1][: -len(END)]]
            self._cache[word] = pieces
        return pieces

    def tokenize(self, text: str) -> List[str]:
        """Split one sentence into subword pieces."""
        out: List[str] = []
        for word in self._words.tokenize(text):
            out.extend(self.segment(word))
        return out

    def detokenize(self, tokens: List[str]) -> str:
        """Join "@@" pieces back into words, then space them as the `unicode` tokenizer does."""
        words: List[str] = []
        part = ""
        for tok in tokens:
            if tok.endswith(CONT):
                part += tok[: -len(CONT)]
            else:
                words.append(part + tok)
                part = ""
        if part:  # a cut-off sequence (e.g. decoding hit max_len): keep the stub
            words.append(part)
        return self._words.detokenize(words)

    def to_dict(self) -> Dict[str, object]:
        """Return a JSON-ready description including the merge table."""
        return {"name": self.name, "lower": self.lower, "merges": [list(m) for m in self.merges]}

    def __repr__(self) -> str:
        return f"BPETokenizer(lower={self.lower}, merges={len(self.merges)})"


def _check_merge(m: Sequence[str]) -> Pair:
    """Validate one stored merge: a pair of non-empty strings."""
    if not (isinstance(m, (list, tuple)) and len(m) == 2 and all(isinstance(s, str) and s for s in m)):
        raise DataError(f"not a BPE merge: {m!r}; expected a pair of non-empty strings")
    return (m[0], m[1])
