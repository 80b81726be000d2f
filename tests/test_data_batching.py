"""Batching: coverage per epoch, padding invariants, seeding, token budgets."""
import numpy as np
import pytest

from tinynmt.data import (EOS_IDX, PAD_IDX, SOS_IDX, UNK_IDX, Batches, DataError, encode_sentences, get_tokenizer, load_dataset, pad_sequences)


@pytest.fixture(scope="module")
def data():
    return load_dataset(src="de", trg="en")


@pytest.fixture(scope="module")
def train(data):
    return data.train


def all_batches(batches, epoch=0):
    return list(batches.epoch(epoch))


def check_rows(arr, lengths):
    """Each row: <sos> first, <eos> at its length - 1, pad after it and only there."""
    assert arr.dtype == np.int64 and arr.flags["C_CONTIGUOUS"] and arr.ndim == 2
    assert arr.shape[1] == lengths.max()
    cols = np.arange(arr.shape[1])
    assert (arr[:, 0] == SOS_IDX).all()
    assert (arr[np.arange(len(arr)), lengths - 1] == EOS_IDX).all()
    real = cols < lengths[:, None]
    assert (arr[~real] == PAD_IDX).all() and (arr[real] != PAD_IDX).all()
    assert ((arr == EOS_IDX).sum(axis=1) == 1).all() and ((arr == SOS_IDX).sum(axis=1) == 1).all()


def test_every_sentence_once_per_epoch(train):
    batches = train.batches(batch_size=64, shuffle=True, seed=1234)
    for epoch in (0, 1):
        seen = np.concatenate([b.index for b in batches.epoch(epoch)])
        assert np.array_equal(np.sort(seen), np.arange(len(train)))
    assert len(batches) == -(-len(train) // 64) == 454


def test_padding_and_length_invariants(train):
    for batch in train.batches(batch_size=64, shuffle=True, seed=7).epoch(3):
        src_len = np.array([len(train.src_ids[i]) for i in batch.index])
        trg_len = np.array([len(train.trg_ids[i]) for i in batch.index])
        check_rows(batch.src, src_len)
        check_rows(batch.trg, trg_len)
        assert batch.n_trg_tokens == int((batch.trg != PAD_IDX).sum()) == trg_len.sum()
        assert batch.n_pred_tokens == int((batch.trg[:, 1:] != PAD_IDX).sum())
        assert batch.n_src_tokens == src_len.sum() and 1 <= len(batch) <= 64
        row = int(np.argmax(src_len))
        assert batch.src[row, :src_len[row]].tolist() == train.src_ids[batch.index[row]]


def test_same_seed_same_batches_other_epoch_other_order(train):
    a = [b.index for b in train.batches(shuffle=True, seed=1234).epoch(5)]
    b = [b.index for b in train.batches(shuffle=True, seed=1234).epoch(5)]
    c = [b.index for b in train.batches(shuffle=True, seed=1234).epoch(6)]
    d = [b.index for b in train.batches(shuffle=True, seed=99).epoch(5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    assert not np.array_equal(np.concatenate(a), np.concatenate(d))


def test_bucketing_keeps_padding_low(train):
    batches = all_batches(train.batches(shuffle=True, seed=1))
    real = sum(int((b.src != PAD_IDX).sum()) for b in batches)
    padded = sum(b.src.size for b in batches)
    # Random batches of 64 are about half padding (measured 48%); bucketed ones under 2%.
    assert real / padded > 0.95


def test_evaluation_mode_is_sorted_and_stable(train):
    batches = train.batches(batch_size=100)
    first, again = all_batches(batches), list(batches)
    assert all(np.array_equal(x.index, y.index) for x, y in zip(first, again))
    order = np.concatenate([b.index for b in first])
    src_len = np.array([len(s) for s in train.src_ids])[order]
    assert (np.diff(src_len) >= 0).all()
    with pytest.raises(TypeError, match=r"epoch\(k\)"):
        iter(train.batches(shuffle=True))


@pytest.mark.parametrize("shuffle", [False, True])
def test_token_budget_is_respected(train, shuffle):
    batches = train.batches(batch_size=None, max_tokens=1000, shuffle=shuffle, seed=3)
    seen = []
    for batch in batches.epoch(2):
        assert max(batch.src.shape[1], batch.trg.shape[1]) * len(batch) <= 1000
        seen.append(batch.index)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(train)))
    # Greedy packing: batches are well filled, not one sentence each.
    assert len(seen) < len(train) * 40 / 1000


@pytest.mark.parametrize("shuffle", [False, True])
def test_token_budget_batches_pad_little_on_either_side(train, shuffle):
    # The budget counts max(S, T) * B, so batches are sorted by that: sorted by source length
    # alone, the targets of one batch spread and a third of the decoder's positions were pad.
    batches = all_batches(train.batches(batch_size=None, max_tokens=8192, shuffle=shuffle, seed=1))
    for side in ("src", "trg"):
        arrays = [getattr(b, side) for b in batches]
        real = sum(int((a != PAD_IDX).sum()) for a in arrays)
        assert real / sum(a.size for a in arrays) > 0.85, side


def test_token_budget_with_sentence_cap(train):
    for batch in train.batches(batch_size=16, max_tokens=4000).epoch(0):
        assert len(batch) <= 16


def test_encode_sentences_frames_with_sos_eos(data):
    data_vocab = data.src_vocab
    tok_ids = encode_sentences([["zwei", "männer", "qqq"]], data_vocab)
    text_ids = encode_sentences(["Zwei Männer qqq"], data_vocab, tokenizer=get_tokenizer("whitespace"))
    assert tok_ids == text_ids and tok_ids[0][0] == SOS_IDX and tok_ids[0][-1] == EOS_IDX
    assert tok_ids[0][3] == UNK_IDX and len(tok_ids[0]) == 5
    with pytest.raises(DataError, match="pass tokenizer="):
        encode_sentences(["Zwei Männer"], data_vocab)


def test_source_only_batches_and_pad_sequences():
    batches = Batches([[2, 5, 3], [2, 5, 6, 7, 3]], batch_size=8)
    (batch,) = list(batches)
    assert batch.trg is None and batch.n_trg_tokens == 0 and batch.n_pred_tokens == 0
    assert batch.src.tolist() == [[2, 5, 3, 1, 1], [2, 5, 6, 7, 3]]
    assert pad_sequences([[4], [4, 5, 6]]).tolist() == [[4, 1, 1], [4, 5, 6]]


def test_bad_batching_input():
    with pytest.raises(DataError, match="2 source sentences but 1 target"):
        Batches([[2, 3], [2, 3]], [[2, 3]])
    with pytest.raises(DataError, match="sentence 1 needs 6 positions, more than max_tokens=5"):
        Batches([[2, 3], [2, 4, 4, 4, 4, 3]], max_tokens=5)
    with pytest.raises(DataError, match="source sentence 0 is empty"):
        Batches([[]])
    with pytest.raises(DataError, match="batch_size must be a positive integer"):
        Batches([[2, 3]], batch_size=0)
