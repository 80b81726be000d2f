"""Vocabularies: specials, order, encode/decode, JSON round trips."""
import pytest

from tinynmt.data import EOS_IDX, PAD_IDX, SOS_IDX, UNK_IDX, DataError, Vocab


@pytest.fixture
def vocab():
    return Vocab.build([["b", "a", "c", "a"], ["b", "a", "d", "ü", "ü"], ["<pad>", "<pad>"]], min_freq=2)


def test_specials_come_first_in_torchtext_order(vocab):
    assert (UNK_IDX, PAD_IDX, SOS_IDX, EOS_IDX) == (0, 1, 2, 3)
    assert vocab.itos[:4] == ["<unk>", "<pad>", "<sos>", "<eos>"]


def test_frequency_then_alphabetical_order_and_min_freq(vocab):
    # a:3 first; b and ü tie at 2 and sort by code point; c, d (once) and "<pad>" are not added.
    assert vocab.itos[4:] == ["a", "b", "ü"]
    assert len(vocab) == 7 and vocab.stoi["ü"] == 6


def test_max_size_caps_tokens_after_specials():
    v = Vocab.build([["x", "x", "x", "y", "y", "z"]], min_freq=1, max_size=2)
    assert v.itos == ["<unk>", "<pad>", "<sos>", "<eos>", "x", "y"]


def test_encode_and_decode(vocab):
    assert vocab.encode(["a", "zzz", "ü"]) == [4, UNK_IDX, 6]
    assert vocab.decode([2, 4, 6, 3]) == ["<sos>", "a", "ü", "<eos>"]
    with pytest.raises(DataError, match="token id 7 is out of range for a vocabulary of 7"):
        vocab.decode([7])


def test_save_load_round_trip_utf8(vocab, tmp_path):
    path = tmp_path / "v.json"
    vocab.save(path)
    assert "ü" in path.read_text(encoding="utf-8")
    assert Vocab.load(path) == vocab
    assert Vocab.from_dict(vocab.to_dict()).stoi == vocab.stoi


def test_bad_vocab_files(tmp_path):
    (tmp_path / "a.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="a.json: not a readable JSON vocabulary"):
        Vocab.load(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"itos": ["a"]}', encoding="utf-8")
    with pytest.raises(DataError, match="b.json: not a tinynmt vocabulary"):
        Vocab.load(tmp_path / "b.json")
    with pytest.raises(DataError, match="no such vocabulary file"):
        Vocab.load(tmp_path / "missing.json")
    with pytest.raises(DataError, match="must start with"):
        Vocab(["a", "b"])
    with pytest.raises(DataError, match="lists token 'a' twice"):
        Vocab(["<unk>", "<pad>", "<sos>", "<eos>", "a", "a"])
