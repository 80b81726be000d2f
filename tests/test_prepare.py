"""tinynmt.data.encode_corpus: a corpus read once equals build_dataset on the same lines; cleaning
counts; bad files; the folder round trip; packed batches equal list batches; a few bytes a pair."""
import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
import regex

from tinynmt.data import DataConfig, DataError, build_dataset, read_multi30k
from tinynmt.data.batching import Batches
from tinynmt.data.corpus import LINE_MODE_CHARS, ChunkTable, read_side
from tinynmt.data.encode_corpus import PrepareOptions, prepare_corpus
from tinynmt.data.prepare_io import load_prepared, save_prepared
from tinynmt.data.prepared import id_dtype
from tinynmt.data.tokenize import get_tokenizer
from tinynmt.data import prepare_io

N = 600   # Multi30k training pairs used: the equalities hold for any cut, and this one is fast


def write_corpus(folder, name, src_lines, trg_lines, src="xx-a", trg="yy_b", gz=False):
    """Write PREFIX.src / PREFIX.trg (gzipped if asked); return the prefix."""
    for lang, lines in ((src, src_lines), (trg, trg_lines)):
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        path = folder / f"{name}.{lang}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)
    return folder / name


@pytest.fixture(scope="module")
def multi30k(tmp_path_factory):
    """The first N Multi30k pairs of train, val and test_2016_flickr, as plain PREFIX.de/.en files."""
    folder = tmp_path_factory.mktemp("m30k")
    pairs = [tuple(side[:N] for side in read_multi30k(split, "de", "en"))
             for split in ("train", "val", "test_2016_flickr")]
    prefixes = [write_corpus(folder, name, *pair, src="de", trg="en", gz=name == "val")
                for name, pair in zip(("train", "val", "test"), pairs)]
    return prefixes, pairs


@pytest.mark.parametrize("options", [
    dict(),
    dict(tokenizer="unicode", lower=False, share_vocab=True, min_freq=1),
    dict(tokenizer="bpe", bpe_merges=300, share_vocab=True, min_freq=1, max_len=30),
    dict(tokenizer="bpe", bpe_merges=200, lower=False, max_size=150, max_len=12, min_freq=1),
])
def test_equals_build_dataset_on_multi30k(multi30k, options):
    prefixes, pairs = multi30k
    data = prepare_corpus("de", "en", *prefixes[:2], [prefixes[2]], PrepareOptions(max_len_ratio=None, **options))
    config = DataConfig(**{"max_len": 100, **options}, test="test")
    ref = build_dataset(*pairs, config)
    assert data.tokenizer == ref.tokenizer
    assert data.src_vocab == ref.src_vocab and data.trg_vocab == ref.trg_vocab
    assert (data.src_vocab is data.trg_vocab) == (ref.src_vocab is ref.trg_vocab)
    for ours, theirs in ((data.train, ref.train), (data.val, ref.val), (data.test, ref.test)):
        assert len(ours) == len(theirs) > 0
        assert [ours.src.sentence(i) for i in range(len(ours))] == theirs.src_ids
        assert [ours.trg.sentence(i) for i in range(len(ours))] == theirs.trg_ids
        assert ours.n_too_long == theirs.n_too_long and ours.n_empty == theirs.n_empty
    assert data.val.src_text == ref.val.src_text and data.test.trg_text == ref.test.trg_text
    if "max_len" in options and options["max_len"] <= 30:
        assert data.train.counts["too_long"] > 0     # the policy was exercised


TRICKY = ["a", "B", "-", "s", "'", "’", ".", "3", ",", "&amp;", "\u0301", "\u0600", "\x1c", "\x1f",
          "\u00a0", "Σ", "İ", "„", "“", "\"", " ", " ", "\t", "\u2028", "e\u0301", "ß", "/"]


def test_tokenizing_chunks_equals_tokenizing_lines(tmp_path):
    rng = random.Random(7)
    lines = ["".join(rng.choice(TRICKY) for _ in range(rng.randrange(0, 14))) for _ in range(3000)]
    lines = [line.replace("\u2028", " ") if rng.random() < 0.5 else line for line in lines]
    (tmp_path / "t.x").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    for name in ("unicode", "whitespace"):
        for lower in (True, False):
            tokenizer = get_tokenizer(name, lower=lower)
            table = ChunkTable(tokenizer)
            side = read_side(tmp_path / "t.x", table, keep_text=True)
            assert side.lines_text == lines
            keys = table.keys()
            words = get_tokenizer(name, lower=False)
            ids = np.concatenate([b[0] for b in side.blocks])
            n_chunks = np.concatenate([b[1] for b in side.blocks])
            ends = np.cumsum(n_chunks)
            for i, line in enumerate(lines):
                chunks = [keys[k] for k in ids[ends[i] - n_chunks[i]:ends[i]]]
                got = [w for c in chunks for w in words.tokenize(c.lstrip("\n"))]
                assert "\0" not in chunks
                assert got == tokenizer.tokenize(line), (name, lower, line)


def test_line_mode_chars_are_the_prepend_class_and_the_odd_spaces():
    every = "".join(map(chr, range(0x110000)))
    expected = "".join(regex.findall(r"[\x1c-\x1f\p{Grapheme_Cluster_Break=Prepend}]", every))
    assert LINE_MODE_CHARS == expected
    assert [c for c in every if c.isspace() != bool(regex.match(r"\s", c))] == list("\x1c\x1d\x1e\x1f")


def test_cleaning_counts_each_reason_once(tmp_path):
    src = ["one two", "", "a b c d e f g h i j k", "x", "bad", "ok fine", "   "]
    trg = ["eins zwei", "leer", "a", "x y z w", "bad", "gut so", "y"]
    prefix = write_corpus(tmp_path, "train", src, trg)
    path = tmp_path / "train.xx-a"
    path.write_bytes(path.read_bytes().replace(b"bad", b"b\xffd"))
    write_corpus(tmp_path, "dev", ["a b c d e f g h i j k", "x", ""], ["a", "y", "z"])
    data = prepare_corpus("xx-a", "yy_b", prefix, tmp_path / "dev",
                          options=PrepareOptions(min_freq=1, max_len=8, max_len_ratio=3))
    assert data.train.counts == {"lines": 7, "invalid_utf8": 1, "empty": 2, "too_long": 1, "ratio": 1,
                                 "kept": 2}
    assert data.val.counts == {"lines": 3, "invalid_utf8": 0, "empty": 1, "too_long": 0, "ratio": 0,
                               "too_long_kept": 1, "kept": 2}
    assert data.manifest["splits"]["train"]["invalid_utf8_first"] == [f"{path}:5"]
    assert data.val.src_text == ["a b c d e f g h i j k", "x"]


def test_cased_gz_bom_crlf_and_limit(tmp_path):
    src = ["\ufeffHello World .", "Zwei Hunde\r", "x"]
    prefix = write_corpus(tmp_path, "train", src, ["Hallo Welt .", "Two dogs", "y"], gz=True)
    data = prepare_corpus("xx-a", "yy_b", prefix, prefix, options=PrepareOptions(lower=False, min_freq=1, limit=2))
    assert len(data.train) == 2 and data.val.src_text == ["Hello World .", "Zwei Hunde"]
    assert "Hello" in data.src_vocab and "hello" not in data.src_vocab and "x" not in data.src_vocab
    assert data.manifest["splits"]["train"]["files"][0]["lines"] == 2


@pytest.mark.parametrize("case, message", [
    ("mismatch", "parallel files differ in length: {d}/train.xx-a has 3 lines, {d}/train.yy_b has 2"),
    ("missing", "{d}/train.yy_b: no such file (nor train.yy_b.gz)"),
    ("empty", "{d}/dev.xx-a: the file is empty"),
    ("binary", "{d}/train.yy_b: not a text file (a NUL byte on line 3)"),
    ("latin1", "{d}/train.yy_b: not UTF-8 text (2 of 3 lines"),
    ("no pairs", "the train split has no sentence pairs left (0 of 3 pairs kept; dropped 3 empty)"),
    ("label", "language label 'x y' must be letters"),
    ("same", "source and target language are both 'xx-a'"),
])
def test_bad_corpora(tmp_path, case, message):
    src, trg = ["a", "b", "c"], ["d", "e", "f"]
    write_corpus(tmp_path, "dev", src, trg)
    langs = ("xx-a", "yy_b")
    if case == "mismatch":
        trg = trg[:2]
    elif case == "empty":
        write_corpus(tmp_path, "dev", [], [])
    elif case == "no pairs":
        src = ["", " ", "\t"]
    elif case == "label":
        langs = ("x y", "yy_b")
    elif case == "same":
        langs = ("xx-a", "xx-a")
    write_corpus(tmp_path, "train", src, trg)
    if case == "missing":
        (tmp_path / "train.yy_b").unlink()
    elif case == "binary":
        (tmp_path / "train.yy_b").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    elif case == "latin1":
        (tmp_path / "train.yy_b").write_bytes("é\nà\nok\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        prepare_corpus(*langs, tmp_path / "train", tmp_path / "dev", options=PrepareOptions(min_freq=1))
    assert str(err.value).startswith(message.format(d=tmp_path))


@pytest.mark.parametrize("bad", [dict(max_len=2), dict(max_len_ratio=0.5), dict(min_freq=0),
                                 dict(tokenizer="bpe"), dict(bpe_merges=10), dict(tokenizer="spacy")])
def test_bad_options_fail_before_reading(tmp_path, bad):
    with pytest.raises(DataError):
        prepare_corpus("xx", "yy", tmp_path / "nowhere", tmp_path / "nowhere", options=PrepareOptions(**bad))


@pytest.mark.parametrize("bad, message", [(dict(max_size=0), "max_size"),
                                          (dict(tokenizer=get_tokenizer("unicode")), "tokenizer must be str")])
def test_an_empty_vocabulary_cap_and_a_tokenizer_object_are_refused_by_name(tmp_path, bad, message):
    """An empty vocabulary cap and a Tokenizer object (a folder records its tokenizer by name)."""
    with pytest.raises(DataError, match=message):
        prepare_corpus("xx", "yy", tmp_path / "nowhere", tmp_path / "nowhere", options=PrepareOptions(**bad))


def test_folder_round_trip(tmp_path, multi30k):
    prefixes, _ = multi30k
    options = PrepareOptions(tokenizer="bpe", bpe_merges=200, share_vocab=True, min_freq=1)
    data = prepare_corpus("de", "en", *prefixes[:2], [prefixes[2], prefixes[1]], options)
    save_prepared(data, tmp_path / "out")
    back = load_prepared(tmp_path / "out")
    assert back.src_vocab is back.trg_vocab and back.src_vocab == data.src_vocab
    assert back.tokenizer == data.tokenizer and [t.name for t in back.tests] == ["test", "test1"]
    assert isinstance(back.train.src.flat, np.memmap) and back.train.src.flat.dtype == np.uint16
    for a, b in ((data.train, back.train), (data.val, back.val), (data.tests[1], back.tests[1])):
        assert np.array_equal(a.src.packed()[0], b.src.packed()[0]) and np.array_equal(a.trg.lengths, b.trg.lengths)
        assert a.src_text == b.src_text and a.counts == b.counts
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["files"][0]["sha256"] == data.manifest["splits"]["train"]["files"][0]["sha256"]
    with pytest.raises(DataError, match="already exists"):
        save_prepared(data, tmp_path / "out")


def test_a_failed_write_leaves_no_folder(tmp_path, multi30k, monkeypatch):
    prefixes, _ = multi30k
    data = prepare_corpus("de", "en", *prefixes[:2], options=PrepareOptions(limit=50))
    calls = []

    def failing_save(f, array):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        np.lib.format.write_array(f, array)
    monkeypatch.setattr(prepare_io.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_prepared(data, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_damaged_folder_is_one_error(tmp_path, multi30k):
    prefixes, _ = multi30k
    save_prepared(prepare_corpus("de", "en", *prefixes[:2], options=PrepareOptions(limit=50)), tmp_path / "out")
    offsets = tmp_path / "out" / "train.en.offsets.npy"
    np.save(offsets, np.load(offsets)[:-1])
    with pytest.raises(DataError, match="do not fit together"):
        load_prepared(tmp_path / "out")
    with pytest.raises(DataError, match="not a prepared folder"):
        load_prepared(tmp_path)


@pytest.mark.parametrize("sizes", [dict(batch_size=16), dict(batch_size=None, max_tokens=200),
                                   dict(batch_size=8, max_tokens=300)])
def test_packed_batches_equal_list_batches(multi30k, sizes):
    prefixes, _ = multi30k
    data = prepare_corpus("de", "en", *prefixes[:2], options=PrepareOptions(tokenizer="unicode"))
    src_ids = [data.train.src.sentence(i) for i in range(len(data.train))]
    trg_ids = [data.train.trg.sentence(i) for i in range(len(data.train))]
    for shuffle in (False, True):
        ours = data.train.batches(shuffle=shuffle, seed=3, **sizes)
        theirs = Batches(src_ids, trg_ids, shuffle=shuffle, seed=3, **sizes)
        for epoch in (0, 1):
            plan = ours.plan(epoch)
            assert len(plan) == len(theirs.plan(epoch))
            assert all(np.array_equal(a, b) for a, b in zip(plan, theirs.plan(epoch)))
        a, b = ours.make_batch(plan[0]), theirs.make_batch(plan[0])
        assert np.array_equal(a.src, b.src) and np.array_equal(a.trg, b.trg) and a.src.dtype == np.int64
        assert (a.n_src_tokens, a.n_trg_tokens) == (b.n_src_tokens, b.n_trg_tokens)
    rows = np.arange(0, len(data.train), 3)
    part = data.train.select(rows)
    assert part.trg.sentence(2) == trg_ids[6] and np.array_equal(part.src.packed()[0][:3], src_ids[0][:3])


def mapped_kb(path):
    """Resident kB of this process's mappings of the file at path (from /proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0]:                 # a mapping's header line
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_a_loaded_split_holds_a_few_bytes_a_pair(tmp_path, multi30k):
    """Issue 23: starts stay in the mapped offsets, lengths, widths and plans are narrow, and a
    batch leaves no ids or offsets pages mapped into the process."""
    prefixes, _ = multi30k
    save_prepared(prepare_corpus("de", "en", *prefixes[:2], options=PrepareOptions(limit=300)), tmp_path / "out")
    train = load_prepared(tmp_path / "out").train
    batches = train.batches(shuffle=True, max_tokens=300)
    for side in (train.src, train.trg):
        assert isinstance(side.starts, np.memmap) and side.starts.dtype == np.int64
        assert side.lengths.dtype == np.uint8 and not isinstance(side.lengths, np.memmap)
    plan = batches.plan(0)
    assert batches._width.dtype == np.uint8 and {idx.dtype for idx in plan} == {np.dtype(np.int32)}
    in_memory = sum(a.nbytes for a in (train.src.lengths, train.trg.lengths, batches._width, *plan))
    assert in_memory == 7 * len(train)                  # 1 + 1 + 1 bytes of lengths and widths, 4 of plan
    assert train.select(np.arange(0, len(train), 2)).src.packed()[1].dtype == np.int64
    batch = batches.make_batch(plan[0])
    assert batch.index.dtype == np.int64 and batch.src.dtype == np.int64
    if Path("/proc/self/smaps").exists():
        for name in ("train.de.ids.npy", "train.en.ids.npy", "train.de.offsets.npy", "train.en.offsets.npy"):
            assert mapped_kb(tmp_path / "out" / name) == 0, name


def test_smallest_id_type():
    assert [id_dtype(n).name for n in (256, 257, 65536, 65537)] == ["uint8", "uint16", "uint16", "uint32"]
