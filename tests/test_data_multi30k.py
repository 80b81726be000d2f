"""Multi30k as carried in the repository: sizes, vocabularies, lookup order, checksums."""
import gzip
import hashlib
import shutil
from collections import Counter

import pytest

from tinynmt.data import DataError, load_dataset, read_multi30k
from tinynmt.data import multi30k
from tinynmt.data.multi30k import REPO_DIR, SHA256, find_file, read_split


@pytest.fixture(scope="module")
def data():
    """The tutorial's setup, loaded once for the module."""
    return load_dataset(src="de", trg="en", tokenizer="whitespace", lower=True, min_freq=2)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No repository copy and an empty cache: every file must come from elsewhere."""
    monkeypatch.setattr(multi30k, "REPO_DIR", tmp_path / "no-repo")
    monkeypatch.setenv("TINYNMT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_vocab_sizes_of_lowercased_whitespace_tokens_seen_twice(data):
    assert len(data.src_vocab) == 9597
    assert len(data.trg_vocab) == 7704


def test_vocab_sizes_match_a_plain_counter():
    # The independent measurement: lowercase, str.split(), count >= 2, plus 4 specials.
    for lang, expected in (("de", 9597), ("en", 7704)):
        text = gzip.decompress((REPO_DIR / f"train.{lang}.gz").read_bytes()).decode("utf-8")
        counts = Counter(tok for line in text.splitlines() for tok in line.lower().split())
        assert sum(n >= 2 for n in counts.values()) + 4 == expected


def test_split_sizes_and_no_empty_lines(data):
    assert (len(data.train), len(data.val), len(data.test)) == (29000, 1014, 1000)
    assert data.test.name == "test_2016_flickr"
    for split in (data.train, data.val, data.test):
        assert split.n_empty == 0 and split.n_too_long == 0


def test_first_pair_is_the_known_sentence(data):
    assert data.train.src_text[0] == "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche."
    assert data.train.trg_text[0] == "Two young, White males are outside near many bushes."
    assert data.src_vocab.decode(data.train.src_ids[0])[:3] == ["<sos>", "zwei", "junge"]


def test_carried_files_match_the_hash_table():
    assert sorted(SHA256) == sorted(p.name for p in REPO_DIR.glob("*.gz"))
    for name, digest in SHA256.items():
        assert hashlib.sha256((REPO_DIR / name).read_bytes()).hexdigest() == digest


def test_hand_placed_files_come_first_plain_or_gz(tmp_path):
    (tmp_path / "val.de").write_text("Hallo Welt\nZweite Zeile\n", encoding="utf-8")
    (tmp_path / "val.en.gz").write_bytes(gzip.compress(b"Hello world\nSecond line\n"))
    src, trg = read_multi30k("val", "de", "en", data_dir=tmp_path)
    assert src == ["Hallo Welt", "Zweite Zeile"] and trg == ["Hello world", "Second line"]
    # A file the folder lacks falls through to the repository copy.
    assert find_file("train", "de", data_dir=tmp_path) == (REPO_DIR / "train.de.gz", True)


def test_torchtext_layout_and_test2016_name(tmp_path):
    (tmp_path / "multi30k").mkdir()
    (tmp_path / "multi30k" / "test2016.de").write_text("a\n", encoding="utf-8")
    path, verify = find_file("test_2016_flickr", "de", data_dir=tmp_path)
    assert path == tmp_path / "multi30k" / "test2016.de" and verify is False


def test_cache_is_used_after_the_repository(isolated):
    cache = isolated / "cache" / "multi30k"
    cache.mkdir(parents=True)
    shutil.copy(REPO_DIR / "val.de.gz", cache / "val.de.gz")
    assert find_file("val", "de", download=False) == (cache / "val.de.gz", True)
    assert len(read_split("val", "de", download=False)) == 1014


def test_damaged_cached_file_fails_its_checksum(isolated):
    cache = isolated / "cache" / "multi30k"
    cache.mkdir(parents=True)
    shutil.copy(REPO_DIR / "test_2016_flickr.de.gz", cache / "val.de.gz")
    with pytest.raises(DataError, match=r"val\.de\.gz: checksum mismatch .*delete it"):
        read_split("val", "de", download=False)


def test_missing_file_says_where_it_looked(isolated):
    with pytest.raises(DataError) as err:
        read_split("train", "fr", download=False)
    msg = str(err.value)
    assert "train.fr.gz not found" in msg and str(isolated / "cache") in msg
    assert "github.com/multi30k/dataset" in msg and "\n" not in msg


@pytest.mark.parametrize("src, trg, pattern", [
    ("xx", "en", r"unknown language code 'xx'; valid: cs, de, en, fr"),
    ("de", "DE", r"unknown language code 'DE'"),
    ("de", "de", r"both 'de'"),
])
def test_bad_language_codes(src, trg, pattern):
    with pytest.raises(DataError, match=pattern):
        load_dataset(src=src, trg=trg, download=False)


def test_splits_that_do_not_exist():
    have = r"its splits for cs: train, val, test_2016_flickr, test_2018_flickr"
    with pytest.raises(DataError, match=r"no test_2017_flickr for cs; " + have):
        find_file("test_2017_flickr", "cs", download=False)
    with pytest.raises(DataError, match=r"unknown test split 'test_2019'"):
        load_dataset(test="test_2019", download=False)


def test_missing_data_dir_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"data folder .*nope does not exist"):
        load_dataset(data_dir=tmp_path / "nope")
