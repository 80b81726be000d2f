"""Any parallel corpus: reading files, bad bytes, uneven sides, the empty/long pair policy."""
import gzip

import pytest

from tinynmt.data import DataError, build_dataset, load_parallel, read_lines, read_parallel


def write(path, text, gz=False):
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_plain_and_gzip_read_the_same(tmp_path):
    text = "Ein Mann.\r\nZwei\u2028Frauen.\n\ufeffnot a BOM here\n"
    plain = write(tmp_path / "a.txt", "\ufeff" + text)
    packed = write(tmp_path / "a.txt.gz", text, gz=True)
    expected = ["Ein Mann.", "Zwei\u2028Frauen.", "\ufeffnot a BOM here"]
    assert read_lines(plain) == read_lines(packed) == expected
    assert read_lines(write(tmp_path / "b.txt", "no final newline")) == ["no final newline"]
    assert read_lines(write(tmp_path / "c.txt", "")) == []


def test_uneven_sides_name_both_counts_and_paths(tmp_path):
    src = write(tmp_path / "x.de", "a\nb\nc\n")
    trg = write(tmp_path / "x.en", "a\nb\n")
    with pytest.raises(DataError) as err:
        read_parallel(src, trg)
    msg = str(err.value)
    assert f"{src} has 3 lines" in msg and f"{trg} has 2" in msg and "\n" not in msg


def test_non_utf8_names_file_and_line(tmp_path):
    bad = write(tmp_path / "bad.de", "gut\nauch gut\nM\xe4nner\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"bad\.de: line 3, byte column 2: not valid UTF-8 \(byte 0xe4\)"):
        read_lines(bad)
    packed = write(tmp_path / "bad.de.gz", "ok\nM\xe4nner\n".encode("latin-1"), gz=True)
    with pytest.raises(DataError, match=r"bad\.de\.gz: line 2"):
        read_lines(packed)


def test_missing_and_damaged_files(tmp_path):
    with pytest.raises(DataError, match=r"nope\.de: no such file"):
        read_parallel(tmp_path / "nope.de", tmp_path / "nope.en")
    with pytest.raises(DataError, match="is a directory"):
        read_lines(tmp_path)
    broken = write(tmp_path / "t.gz", gzip.compress(b"abc\n" * 100)[:-8])
    with pytest.raises(DataError, match="damaged gzip file"):
        read_lines(broken)


def test_empty_pairs_are_dropped_everywhere_and_counted():
    train = (["a b", "", "a c", "  ", "b"], ["x y", "x", "\t", "x", "y y"])
    val = (["a", " "], ["x", "y"])
    data = build_dataset(train, val, val, min_freq=1)
    assert data.train.src_text == ["a b", "b"] and data.train.n_empty == 3
    assert len(data.val) == 1 and data.val.n_empty == 1
    assert "3 empty dropped" in "\n".join(data.summary())


def test_max_len_counts_sos_eos_and_drops_only_training_pairs():
    long, short = "w " * 8, "w w"          # 8 tokens -> 10 ids; 2 tokens -> 4 ids
    train = ([short, long, short], [short, short, long])
    data = build_dataset(train, ([long], [short]), ([short], [short]), min_freq=1, max_len=9)
    assert len(data.train) == 1 and data.train.n_too_long == 2
    assert len(data.val) == 1 and data.val.n_too_long == 1  # kept, counted
    assert all(len(ids) <= 9 for ids in data.train.src_ids + data.train.trg_ids)
    assert len(build_dataset(train, train, train, max_len=10).train) == 3
    with pytest.raises(DataError, match="no training pairs left"):
        build_dataset(train, train, train, max_len=3)
    with pytest.raises(DataError, match="max_len must be >= 3"):
        build_dataset(train, train, train, max_len=2)


def test_load_parallel_from_files(tmp_path):
    for split, n in (("train", 4), ("val", 1), ("test", 1)):
        write(tmp_path / f"{split}.src.gz", "Hallo Welt .\n" * n, gz=True)
        write(tmp_path / f"{split}.trg", "Hello world .\n" * n)
    pair = lambda s: (tmp_path / f"{s}.src.gz", tmp_path / f"{s}.trg")
    data = load_parallel(pair("train"), pair("val"), pair("test"), tokenizer="unicode", min_freq=2)
    assert data.src_vocab.itos[4:] == [".", "hallo", "welt"]
    assert data.train.src_ids[0] == [2, 5, 6, 4, 3]
    assert data.test.trg_tokens == [["hello", "world", "."]]
