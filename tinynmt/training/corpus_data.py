"""Training on your own corpus: a prepared folder (--data DIR) or raw files (--train PREFIX ...).

    data = load_corpus(config)                       # a PreparedData, cut and checked for the run
    Config(data="data/xx-yy", **prepared_fields("data/xx-yy"))      # from Python
    src_lines, ref_lines, what = corpus_test_set(config, "test")     # what evaluate scores

With --data the folder fixes the languages, the tokenizer (its BPE merges) and the
vocabularies: `python -m tinynmt.train --data DIR` takes them from its manifest
(with_prepared_fields), a flag that says otherwise is an error, and load_corpus checks a
Config built in Python the same way. Training pairs longer than the run's max_len (the
model's positions by default) are left out at load time; --limit-train/--limit-eval take the
first N pairs (the vocabularies stay the folder's). With --train/--valid [--test] PREFIX the
raw files are prepared in memory, exactly as `python -m tinynmt.prepare` would with the
run's options (tinynmt.data.prepare_corpus), --limit-train/--limit-eval lines read.
"""
from pathlib import Path

import numpy as np

from ..data import DataError, PrepareOptions, load_prepared, prepare_corpus, read_lines, read_manifest
from ..data.corpus import find_side
from ..options import ConfigError

DATA_FIELDS = ("src", "trg", "tokenizer", "bpe_merges", "lower", "share_vocab", "min_freq")


def uses_own_corpus(config):
    """Does the run train on a corpus of its own (--data or --train) rather than Multi30k?"""
    return bool(config.data or config.train)


def prepared_fields(folder):
    """The Config fields a prepared folder fixes (DATA_FIELDS), from its manifest."""
    manifest = read_manifest(folder)
    options = manifest["options"]
    return {"src": manifest["src"], "trg": manifest["trg"], **{k: options[k] for k in DATA_FIELDS[2:]}}


def with_prepared_fields(args):
    """Command-line values (only the flags given) with the folder's DATA_FIELDS filled in; a given
    flag that differs from the folder is a ConfigError."""
    if "test" in args:
        raise ConfigError("--test with --data: the folder's first test split is scored (prepare it "
                          "with --test PREFIX; python -m tinynmt.evaluate --split NAME scores the others)")
    fields = prepared_fields(args["data"])
    for name, value in fields.items():
        if name in args and args[name] != value:
            raise ConfigError(f"--{name.replace('_', '-')} {args[name]!r} differs from {args['data']}'s "
                              f"{value!r}: the prepared folder fixes the languages, the tokenizer and the "
                              f"vocabularies (prepare the corpus again to change them)")
    return {**args, **fields}


def check_corpus_options(config):
    """ConfigError for --data/--train/--valid/--test-prefix given in a way that cannot work."""
    if config.data and (config.train or config.valid or config.test_prefix):
        raise ConfigError("give --data DIR (a prepared folder) or --train/--valid PREFIX (raw files), not both")
    if (config.valid or config.test_prefix) and not config.train:
        raise ConfigError("--valid and --test PREFIX name files of your own corpus: give --train PREFIX too")
    if config.train and not config.valid:
        raise ConfigError("--train needs --valid PREFIX: the validation files PREFIX.SRC and PREFIX.TRG")
    if uses_own_corpus(config) and config.data_dir:
        raise ConfigError("--data-dir is where Multi30k files are found; with --data or --train it has no use")


def load_corpus(config, log=lambda message: None):
    """The run's own corpus as a PreparedData (see the module docstring)."""
    check_corpus_options(config)
    if config.data:
        data = load_prepared(config.data)
        expected = prepared_fields(config.data)
        for name, value in expected.items():
            if getattr(config, name) != value:
                raise ConfigError(f"{name}={getattr(config, name)!r} but {config.data} was prepared with "
                                  f"{value!r}; take the data fields from the folder: Config(data=..., "
                                  f"**prepared_fields(folder))")
    else:
        options = PrepareOptions(tokenizer=config.tokenizer, bpe_merges=config.bpe_merges, lower=config.lower,
                                 share_vocab=config.share_vocab, min_freq=config.min_freq,
                                 max_len=config.train_max_len, max_len_ratio=config.max_len_ratio,
                                 limit=config.limit_train)
        tests = [config.test_prefix] if config.test_prefix else []
        data = prepare_corpus(config.src, config.trg, config.train, config.valid, tests, options, log,
                              eval_limit=config.limit_eval)
    return fit_to_run(data, config)


def fit_to_run(data, config):
    """Leave out training pairs over the run's max_len, keep --limit-train/--limit-eval pairs, and
    check that every validation and test sentence fits the model."""
    train = data.train
    fits = np.maximum(train.src.lengths, train.trg.lengths) <= config.train_max_len
    rows = np.flatnonzero(fits)
    if config.limit_train is not None:
        rows = rows[:config.limit_train]
    if len(rows) < len(train):
        data.train = train.select(rows)
        data.train.counts["too_long"] = train.counts.get("too_long", 0) + int((~fits).sum())
    if not len(data.train):
        raise DataError(f"no training pair fits max_len={config.train_max_len}")
    if config.limit_eval is not None:
        data.val = data.val.select(np.arange(min(config.limit_eval, len(data.val))))
        data.tests = [t.select(np.arange(min(config.limit_eval, len(t)))) for t in data.tests]
    for split in (data.val, *data.tests):   # val/test pairs are never dropped: they must fit the model
        if split.longest() > config.max_length:
            raise DataError(f"{split.name} has a sentence of {split.longest()} ids (<sos>/<eos> included), "
                            f"more than the model's max_length={config.max_length}; raise --max-length")
    return data


def corpus_test_set(config, split=None):
    """(source lines, reference lines, a description) of a split of the run's own corpus: the
    prepared folder's val, test, test1, ... text, or the raw files --valid/--test named."""
    name = split or "test"
    if config.data:
        folder = Path(config.data)
        splits = [s for s in read_manifest(folder)["splits"] if s != "train"]
        if name not in splits:
            raise DataError(f"{folder} has no {name} split to score; it has {', '.join(splits)}")
        lines = [read_lines(folder / f"{name}.{lang}") for lang in (config.src, config.trg)]
        return (*lines, f"{folder} {name} {config.src}->{config.trg}")
    prefixes = {"val": config.valid, "test": config.test_prefix}
    if prefixes.get(name) is None:
        raise DataError(f"the run has no {name} files; give --src-file/--ref-file"
                        + (" or --split val" if name == "test" else ""))
    lines = [read_lines(find_side(prefixes[name], lang)) for lang in (config.src, config.trg)]
    return (*lines, f"{prefixes[name]} {config.src}->{config.trg}")
