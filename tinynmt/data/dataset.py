"""A ready-to-train dataset: splits tokenized, filtered, encoded, with both vocabularies.

    data = load_dataset(src="de", trg="en")                 # Multi30k, the tutorial's setup
    data.src_vocab, data.trg_vocab, data.tokenizer
    data.train.src_ids[0]                                   # [SOS_IDX, ..., EOS_IDX]
    for batch in data.train.batches(shuffle=True, seed=1234).epoch(k): ...
    for batch in data.val.batches(): ...                    # sorted, no shuffle
    data = load_parallel(train=("a.de", "a.en"), val=(...), test=(...))   # any corpus

Policy, the same for every split and every corpus:
- Empty pairs: a pair where either side has no tokens (empty or whitespace-only line)
  is dropped, and counted in `Split.n_empty`. (Multi30k has none.)
- Long pairs: `max_len` counts the ids the model sees, <sos> and <eos> included, so it
  is the model's number of positions (the tutorial's 100). Training pairs with either
  side longer are dropped (`Split.n_too_long`); val/test pairs are kept, so scores stay
  comparable, and counted in `Split.n_too_long` for the caller to handle. None: no limit.
- Vocabularies are built from the training split after dropping, as torchtext did.
- Subwords: tokenizer="bpe" with bpe_merges=N learns one merge table from the training
  split's raw lines, source and target together (a joint table), before the pair policy
  (which counts subword tokens). A BPETokenizer passed in (e.g. from a checkpoint) is
  used as it is.
- Vocabularies are one per side, or with share_vocab=True one built from both sides of
  the training split (then src_vocab is trg_vocab: what tied embeddings need).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .batching import Batches, encode_sentences
from .errors import DataError
from .multi30k import SPLITS, read_multi30k
from .textfile import check_parallel, read_parallel
from .bpe import BPETokenizer
from .tokenize import Tokenizer, get_tokenizer
from .vocab import Vocab

Pair = Tuple[Sequence[str], Sequence[str]]


@dataclass
class DataConfig:
    """Data options; the fields are `load_dataset`'s keyword arguments and the CLI's flags."""

    src: str = "de"
    trg: str = "en"
    tokenizer: str = "whitespace"
    lower: bool = True
    min_freq: int = 2
    max_size: Optional[int] = None
    max_len: Optional[int] = None
    data_dir: Optional[str] = None
    test: str = "test_2016_flickr"
    download: bool = True


@dataclass
class Split:
    """One split's kept pairs as raw text, tokens and ids (ids framed by <sos>/<eos>)."""

    name: str
    src_text: List[str]
    trg_text: List[str]
    src_tokens: List[List[str]]
    trg_tokens: List[List[str]]
    src_ids: List[List[int]] = field(default_factory=list)
    trg_ids: List[List[int]] = field(default_factory=list)
    n_empty: int = 0      # pairs dropped because a side had no tokens
    n_too_long: int = 0   # pairs over max_len: dropped from train, kept (and counted) elsewhere

    def __len__(self) -> int:
        return len(self.src_text)

    def batches(self, batch_size: Optional[int] = 64, max_tokens: Optional[int] = None,
                shuffle: bool = False, seed: int = 1234) -> Batches:
        """Return length-bucketed batches over this split (see tinynmt.data.batching)."""
        return Batches(self.src_ids, self.trg_ids, batch_size=batch_size, max_tokens=max_tokens,
                       shuffle=shuffle, seed=seed)


@dataclass
class TranslationData:
    """Train/val/test splits, the tokenizer and both vocabularies."""

    src_lang: str
    trg_lang: str
    tokenizer: Tokenizer
    src_vocab: Vocab
    trg_vocab: Vocab
    train: Split
    val: Split
    test: Split

    def summary(self) -> List[str]:
        """Return human-readable lines: split sizes, drops and vocabulary sizes."""
        lines = [f"{self.src_lang}->{self.trg_lang}, tokenizer {self.tokenizer.name} (lower={self.tokenizer.lower})"]
        for split in (self.train, self.val, self.test):
            note = f", {split.n_empty} empty dropped" if split.n_empty else ""
            if split.n_too_long:
                note += f", {split.n_too_long} over max_len {'dropped' if split is self.train else 'kept'}"
            lines.append(f"{split.name}: {len(split)} pairs{note}")
        if self.src_vocab is self.trg_vocab:
            lines.append(f"vocab {self.src_lang}+{self.trg_lang} (joint): {len(self.src_vocab)}")
        else:
            lines.append(f"vocab {self.src_lang}: {len(self.src_vocab)}, vocab {self.trg_lang}: {len(self.trg_vocab)}")
        return lines


def _make_split(name: str, pair: Pair, tokenizer: Tokenizer, max_len: Optional[int], is_train: bool) -> Split:
    """Tokenize one split and apply the empty/long pair policy (ids are filled in later)."""
    src_text, trg_text = pair
    check_parallel(src_text, trg_text, f"{name} source", f"{name} target")
    tokenize = tokenizer.tokenize
    split = Split(name, [], [], [], [])
    limit = None if max_len is None else max_len - 2  # room for <sos> and <eos>
    for s, t in zip(src_text, trg_text):
        s_tok, t_tok = tokenize(s), tokenize(t)
        if not s_tok or not t_tok:
            split.n_empty += 1
            continue
        if limit is not None and (len(s_tok) > limit or len(t_tok) > limit):
            split.n_too_long += 1
            if is_train:
                continue
        split.src_text.append(s)
        split.trg_text.append(t)
        split.src_tokens.append(s_tok)
        split.trg_tokens.append(t_tok)
    return split


def _resolve_tokenizer(tokenizer: Union[str, Tokenizer], lower: bool, bpe_merges: Optional[int]):
    """Check the tokenizer name and merge count early; "bpe" stays a name until train is read."""
    if isinstance(tokenizer, Tokenizer):
        if bpe_merges is not None:
            raise DataError("bpe_merges is for tokenizer='bpe' (a name); a Tokenizer object is used as is")
        return tokenizer
    if tokenizer == "bpe":
        if bpe_merges is None or isinstance(bpe_merges, bool) or not isinstance(bpe_merges, int) or bpe_merges < 0:
            raise DataError(f"tokenizer 'bpe' needs bpe_merges, an int >= 0 (e.g. 10000), got {bpe_merges!r}")
        return tokenizer
    if bpe_merges is not None:
        raise DataError(f"bpe_merges is only for tokenizer='bpe', not {tokenizer!r}")
    return get_tokenizer(tokenizer, lower=lower)


def build_dataset(train: Pair, val: Pair, test: Pair, tokenizer: Union[str, Tokenizer] = "whitespace",
                  lower: bool = True, min_freq: int = 2, max_size: Optional[int] = None,
                  max_len: Optional[int] = None, src_lang: str = "src", trg_lang: str = "trg",
                  test_name: str = "test", bpe_merges: Optional[int] = None,
                  share_vocab: bool = False) -> TranslationData:
    """Tokenize, filter and encode (src_lines, trg_lines) pairs; vocabularies come from train."""
    tokenizer = _resolve_tokenizer(tokenizer, lower, bpe_merges)
    if tokenizer == "bpe":  # one joint merge table from the training split only
        tokenizer = BPETokenizer.learn(list(train[0]) + list(train[1]), bpe_merges, lower=lower)
    if test_name in ("train", "val"):
        raise DataError(f"test_name {test_name!r} would hide the {test_name} split; use another name")
    if max_len is not None and max_len < 3:
        raise DataError(f"max_len must be >= 3 (<sos>, one token, <eos>), got {max_len}")
    splits: Dict[str, Split] = {}
    for name, pair in (("train", train), ("val", val), (test_name, test)):
        splits[name] = _make_split(name, pair, tokenizer, max_len, is_train=name == "train")
    tr = splits["train"]
    if not len(tr):
        raise DataError(f"no training pairs left (dropped {tr.n_empty} empty, {tr.n_too_long} over max_len={max_len})")
    if share_vocab:
        src_vocab = trg_vocab = Vocab.build(tr.src_tokens + tr.trg_tokens, min_freq=min_freq,
                                            max_size=max_size)
    else:
        src_vocab = Vocab.build(tr.src_tokens, min_freq=min_freq, max_size=max_size)
        trg_vocab = Vocab.build(tr.trg_tokens, min_freq=min_freq, max_size=max_size)
    for split in splits.values():
        split.src_ids = encode_sentences(split.src_tokens, src_vocab)
        split.trg_ids = encode_sentences(split.trg_tokens, trg_vocab)
    return TranslationData(src_lang, trg_lang, tokenizer, src_vocab, trg_vocab,
                           splits["train"], splits["val"], splits[test_name])


def load_dataset(src: str = "de", trg: str = "en", tokenizer: Union[str, Tokenizer] = "whitespace",
                 lower: bool = True, min_freq: int = 2, max_size: Optional[int] = None,
                 max_len: Optional[int] = None, data_dir=None, test: str = "test_2016_flickr",
                 download: bool = True, progress: bool = True, bpe_merges: Optional[int] = None,
                 share_vocab: bool = False) -> TranslationData:
    """Load Multi30k for a language pair: train, val and the `test` split, ready to batch."""
    if test not in SPLITS or test in ("train", "val"):
        raise DataError(f"unknown test split {test!r}; valid: {', '.join(SPLITS[2:])}")
    tokenizer = _resolve_tokenizer(tokenizer, lower, bpe_merges)  # a bad name fails before any file is read
    pairs = [read_multi30k(name, src, trg, data_dir, download, progress) for name in ("train", "val", test)]
    return build_dataset(*pairs, tokenizer=tokenizer, lower=lower, min_freq=min_freq, max_size=max_size,
                         max_len=max_len, src_lang=src, trg_lang=trg, test_name=test, bpe_merges=bpe_merges,
                         share_vocab=share_vocab)


def load_parallel(train: Pair, val: Pair, test: Pair, tokenizer: Union[str, Tokenizer] = "whitespace",
                  lower: bool = True, min_freq: int = 2, max_size: Optional[int] = None,
                  max_len: Optional[int] = None, src_lang: str = "src", trg_lang: str = "trg",
                  bpe_merges: Optional[int] = None, share_vocab: bool = False) -> TranslationData:
    """Load any parallel corpus given as (src_path, trg_path) file pairs, plain or .gz."""
    tokenizer = _resolve_tokenizer(tokenizer, lower, bpe_merges)
    pairs = [read_parallel(s, t) for s, t in (train, val, test)]
    return build_dataset(*pairs, tokenizer=tokenizer, lower=lower, min_freq=min_freq, max_size=max_size,
                         max_len=max_len, src_lang=src_lang, trg_lang=trg_lang, bpe_merges=bpe_merges,
                         share_vocab=share_vocab)
