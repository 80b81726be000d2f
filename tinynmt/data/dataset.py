"""A ready-to-train dataset: splits tokenized, filtered, encoded, with both vocabularies.

    data = load_dataset()                                   # Multi30k, the tutorial's setup
    data = load_dataset(DataConfig(tokenizer="bpe", bpe_merges=8000))   # or one config object
    data = load_dataset(tokenizer="bpe", bpe_merges=8000)   # the same: changes to the defaults
    data.src_vocab, data.trg_vocab, data.tokenizer
    data.train.src_ids[0]                                   # [SOS_IDX, ..., EOS_IDX]
    for batch in data.train.batches(shuffle=True, seed=1234).epoch(k): ...
    for batch in data.val.batches(): ...                    # sorted, no shuffle
    data = load_parallel(("a.de", "a.en"), (...), (...), src="de", trg="en")   # any corpus

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
- Nothing to learn from is an error, with the numbers: no training pair left, an empty
  validation or test split, a vocabulary of only the special tokens (min_freq too high).
- Vocabularies are one per side, or with share_vocab=True one built from both sides of
  the training split (then src_vocab is trg_vocab: what tied embeddings need).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..options import not_negative, option, positive
from .batching import Batches, encode_sentences
from .errors import DataError
from .multi30k import SPLITS, read_multi30k
from .textfile import check_parallel, read_parallel
from .bpe import BPETokenizer
from .tokenize import Tokenizer, get_tokenizer
from .vocab import SPECIALS, Vocab

Pair = Tuple[Sequence[str], Sequence[str]]


@dataclass
class VocabOptions:
    """How text becomes ids: the tokenizer and the vocabularies. DataConfig (Multi30k and raw
    pairs in memory) and PrepareOptions (a prepared folder) both take these fields."""

    tokenizer: Union[str, Tokenizer] = option("whitespace", "whitespace (the tutorial's), unicode, "
                                              "or bpe (subwords learned from the training split)")
    bpe_merges: Optional[int] = option(None, "with tokenizer bpe: merges to learn (one table for "
                                             "both languages)", not_negative)
    lower: bool = option(True, "lowercase before tokenizing (--no-lower: cased subwords and output)")
    share_vocab: bool = option(False, "one vocabulary built from both languages' training text")
    min_freq: int = option(2, "keep tokens seen at least this often in train", positive)
    max_size: Optional[int] = option(None, "cap on vocabulary tokens after the 4 specials", positive)

    def replace(self, **changes):
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass
class DataConfig(VocabOptions):
    """Every data option: what load_dataset, load_parallel and build_dataset take, and the flags
    of `python -m tinynmt.data`. The flags check each limit as they are parsed (programs/cli.py);
    from Python, values are checked where they are used (DataError)."""

    src: str = option("de", "source language: cs, de, en or fr (a label for other corpora)")
    trg: str = option("en", "target language: cs, de, en or fr (a label for other corpora)")
    max_len: Optional[int] = option(None, "drop training pairs longer than this many ids "
                                          "(<sos>/<eos> included)", positive)
    data_dir: Optional[str] = option(None, "folder with hand-placed {split}.{lang}[.gz] files, "
                                           "looked in first")
    test: str = option("test_2016_flickr", "test split: test_2016_flickr, test_2017_flickr, "
                                           "test_2017_mscoco, test_2018_flickr (a label for other corpora)")
    download: bool = option(True, "download missing Multi30k files into the cache")


def _config(config: Optional[DataConfig], changes, multi30k: bool = True) -> DataConfig:
    """`config` with keyword changes applied; the default is DataConfig(), or for other corpora
    one that labels the languages and the test split "src", "trg" and "test"."""
    default = DataConfig() if multi30k else DataConfig(src="src", trg="trg", test="test")
    return (config or default).replace(**changes)


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


def _check_tokenizer(config: VocabOptions) -> None:
    """Fail early (before any file is read) on a bad tokenizer name or merge count."""
    tokenizer, bpe_merges = config.tokenizer, config.bpe_merges
    if isinstance(tokenizer, Tokenizer):
        if bpe_merges is not None:
            raise DataError("bpe_merges is for tokenizer='bpe' (a name); a Tokenizer object is used as is")
    elif tokenizer == "bpe":
        if bpe_merges is None or isinstance(bpe_merges, bool) or not isinstance(bpe_merges, int) or bpe_merges < 0:
            raise DataError(f"tokenizer 'bpe' needs bpe_merges, an int >= 0 (e.g. 10000), got {bpe_merges!r}")
    elif bpe_merges is not None:
        raise DataError(f"bpe_merges is only for tokenizer='bpe', not {tokenizer!r}")
    else:
        get_tokenizer(tokenizer, lower=config.lower)


def _resolve_tokenizer(config: DataConfig, train: Pair) -> Tokenizer:
    """The Tokenizer the config names; "bpe" learns one joint merge table from the training split."""
    _check_tokenizer(config)
    if isinstance(config.tokenizer, Tokenizer):
        return config.tokenizer
    if config.tokenizer == "bpe":
        return BPETokenizer.learn(list(train[0]) + list(train[1]), config.bpe_merges, lower=config.lower)
    return get_tokenizer(config.tokenizer, lower=config.lower)


def check_vocabularies(src_vocab: Vocab, trg_vocab: Vocab, n_pairs: int, min_freq: int,
                       max_size: Optional[int]) -> None:
    """A DataError, with the numbers, when a vocabulary holds only the special tokens: nothing
    could be learned (also for prepared corpora, tinynmt.data.encode_corpus)."""
    for side, vocab in (("source", src_vocab), ("target", trg_vocab)):
        if len(vocab) <= len(SPECIALS):
            cap = f" and max_size={max_size}" if max_size is not None else ""
            raise DataError(f"the {side} vocabulary holds only the {len(SPECIALS)} special tokens: no "
                            f"token of the {n_pairs} training pairs is seen min_freq={min_freq} times"
                            f"{cap}; lower --min-freq")


def build_dataset(train: Pair, val: Pair, test: Pair, config: Optional[DataConfig] = None,
                  **changes) -> TranslationData:
    """Tokenize, filter and encode (src_lines, trg_lines) pairs; vocabularies come from train.

    config.src / config.trg / config.test label the languages and the test split."""
    config = _config(config, changes, multi30k=False)
    max_len, min_freq, max_size, test_name = config.max_len, config.min_freq, config.max_size, config.test
    if test_name in ("train", "val"):
        raise DataError(f"the test split cannot be named {test_name!r}: it would hide the {test_name} "
                        f"split")
    if max_len is not None and max_len < 3:
        raise DataError(f"max_len must be >= 3 (<sos>, one token, <eos>), got {max_len}")
    tokenizer = _resolve_tokenizer(config, train)
    splits: Dict[str, Split] = {}
    for name, pair in (("train", train), ("val", val), (test_name, test)):
        splits[name] = _make_split(name, pair, tokenizer, max_len, is_train=name == "train")
    tr = splits["train"]
    if not len(tr):
        raise DataError(f"no training pairs left (dropped {tr.n_empty} empty, {tr.n_too_long} over max_len={max_len})")
    for name, pair in (("val", val), (test_name, test)):
        if not len(splits[name]):
            raise DataError(f"the {name} split has no pairs to score ({len(pair[0])} read, "
                            f"{splits[name].n_empty} with an empty side); it needs at least one")
    if config.share_vocab:
        src_vocab = trg_vocab = Vocab.build(tr.src_tokens + tr.trg_tokens, min_freq=min_freq,
                                            max_size=max_size)
    else:
        src_vocab = Vocab.build(tr.src_tokens, min_freq=min_freq, max_size=max_size)
        trg_vocab = Vocab.build(tr.trg_tokens, min_freq=min_freq, max_size=max_size)
    check_vocabularies(src_vocab, trg_vocab, len(tr), min_freq, max_size)
    for split in splits.values():
        split.src_ids = encode_sentences(split.src_tokens, src_vocab)
        split.trg_ids = encode_sentences(split.trg_tokens, trg_vocab)
    return TranslationData(config.src, config.trg, tokenizer, src_vocab, trg_vocab,
                           splits["train"], splits["val"], splits[test_name])


def load_dataset(config: Optional[DataConfig] = None, progress: bool = True, **changes) -> TranslationData:
    """Load Multi30k for a language pair: train, val and the `test` split, ready to batch."""
    config = _config(config, changes)
    if config.test not in SPLITS or config.test in ("train", "val"):
        raise DataError(f"unknown test split {config.test!r}; valid: {', '.join(SPLITS[2:])}")
    _check_tokenizer(config)
    pairs = [read_multi30k(name, config.src, config.trg, config.data_dir, config.download, progress)
             for name in ("train", "val", config.test)]
    return build_dataset(*pairs, config)


def load_parallel(train: Pair, val: Pair, test: Pair, config: Optional[DataConfig] = None,
                  **changes) -> TranslationData:
    """Load any parallel corpus given as (src_path, trg_path) file pairs, plain or .gz."""
    config = _config(config, changes, multi30k=False)
    _check_tokenizer(config)
    pairs = [read_parallel(s, t) for s, t in (train, val, test)]
    return build_dataset(*pairs, config)
