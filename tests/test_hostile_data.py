"""Issue 22, family 4: the two sides of a pair come from the same place, and nothing to learn
from (an empty validation or test split, a vocabulary of only the special tokens) is an error
before training starts, with the numbers."""
import pytest

from hostile_tools import assert_one_error_line, status_of
from tinynmt.data import DataConfig, DataError, build_dataset, read_multi30k
from tinynmt.data.multi30k import REPO_DIR
from tinynmt.programs import train

TRAIN = (["ein mann", "zwei hunde", "ein hund"], ["a man", "two dogs", "a dog"])
VAL = (["ein mann"], ["a man"])


@pytest.mark.skipif(not (REPO_DIR / "train.de.gz").is_file(), reason="needs the repository's Multi30k files")
def test_one_hand_placed_side_is_not_paired_with_the_official_other(tmp_path):
    german = read_multi30k("train", "de", "en", download=False)[0]
    (tmp_path / "train.de").write_text("\n".join(reversed(german)) + "\n", encoding="utf-8")  # 29,000 lines
    with pytest.raises(DataError, match=r"holds train\.de but no train\.en\[\.gz\]: both sides of a pair "
                                        r"must come from the same place"):
        read_multi30k("train", "de", "en", data_dir=tmp_path, download=False)
    (tmp_path / "train.en").write_text("\n".join(f"line {i}" for i in range(len(german))) + "\n")
    src, trg = read_multi30k("train", "de", "en", data_dir=tmp_path, download=False)
    assert (src[0], trg[0]) == (german[-1], "line 0")                   # both sides hand-placed: fine


@pytest.mark.parametrize("split", ["val", "test"])
def test_an_empty_validation_or_test_split_is_an_error(split):
    empty = ([" ", ""], ["a man", "  "])                                # two pairs, each with an empty side
    pairs = {"val": VAL, "test": VAL}
    pairs[split] = empty
    name = "val" if split == "val" else "test_2016_flickr"
    with pytest.raises(DataError, match=rf"the {name} split has no pairs to score \(2 read, 2 with an "
                                        rf"empty side\)"):
        build_dataset(TRAIN, pairs["val"], pairs["test"], DataConfig(test="test_2016_flickr"))


def test_a_vocabulary_of_only_the_special_tokens_is_an_error(tmp_path, capsys):
    with pytest.raises(DataError, match=r"the source vocabulary holds only the 4 special tokens: no token "
                                        r"of the 3 training pairs is seen min_freq=5 times; lower --min-freq"):
        build_dataset(TRAIN, VAL, VAL, min_freq=5)
    out = tmp_path / "run"
    argv = ["--min-freq", "100000", "--limit-train", "20", "--limit-eval", "2", "--max-steps", "1",
            "--hid-dim", "16", "--enc-heads", "2", "--dec-heads", "2", "--no-plot", "--out", out]
    assert status_of(train.main, argv) == 2
    assert_one_error_line(capsys.readouterr().err, "holds only the 4 special tokens", "20 training pairs")
    assert not out.exists()                                              # nothing written


def test_a_prepared_corpus_with_a_vocabulary_of_specials_is_refused_too(tmp_path, capsys):
    from hostile_tools import write_lines
    from tinynmt.programs import prepare
    for split in ("train", "dev"):
        write_lines(tmp_path / f"{split}.xx", ["a b", "b c"])
        write_lines(tmp_path / f"{split}.yy", ["x y", "y z"])
    argv = ["--train", tmp_path / "train", "--valid", tmp_path / "dev", "--src", "xx", "--trg", "yy",
            "--min-freq", "3", "--out", tmp_path / "out"]
    assert status_of(prepare.main, argv) == 2
    assert_one_error_line(capsys.readouterr().err, "the source vocabulary holds only the 4 special tokens",
                          "2 training pairs", "min_freq=3")
    assert not (tmp_path / "out").exists()
