"""Byte-pair encoding: learned merges, segmentation, round trips, checkpoints, train-only learning."""
import json
from collections import Counter

import pytest

from tinynmt.data import (BPETokenizer, DataError, build_dataset, get_tokenizer, learn_merges, load_dataset, read_multi30k, tokenizer_from_dict)
from tinynmt.data.bpe import count_words

# Sennrich et al.'s toy corpus; the merges below were worked out by hand: the most
# frequent pair each step, ties to the lexicographically smallest pair.
TOY = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
TOY_MERGES = [
    ("e", "s"), ("es", "t</w>"),          # 9 and 9: ('e','s') < ('s','t</w>')
    ("l", "o"),                           # 7
    ("e", "w"), ("ew", "est</w>"), ("n", "ewest</w>"),  # 6-way ties, smallest first
    ("lo", "w</w>"),                      # 5
    ("d", "est</w>"), ("i", "dest</w>"), ("w", "idest</w>"),  # 3
    ("e", "r</w>"), ("lo", "w"), ("low", "er</w>"),  # 2 ("lower" only)
]


@pytest.fixture(scope="module")
def val_lines():
    """Multi30k val, German and English lines."""
    de, en = read_multi30k("val", "de", "en", progress=False)
    return de + en


@pytest.fixture(scope="module")
def val_bpe(val_lines):
    """A joint 2,000-merge tokenizer learned on val (cheaper than train, same kind of text)."""
    return BPETokenizer.learn(val_lines, 2000, lower=True)


def test_toy_merges_match_hand_computed_sequence():
    assert learn_merges(TOY, 100) == TOY_MERGES  # stops after 13: nothing occurs twice any more
    assert learn_merges(TOY, 4) == TOY_MERGES[:4]
    assert learn_merges(TOY, 100, min_count=3) == TOY_MERGES[:10]
    assert learn_merges(TOY, 0) == []


def test_learning_is_deterministic_whatever_the_input_order():
    reordered = dict(reversed(list(TOY.items())))
    assert learn_merges(reordered, 100) == learn_merges(TOY, 100) == TOY_MERGES
    lines = ["zwei hunde laufen", "ein hund läuft", "zwei hunde"] * 3
    assert BPETokenizer.learn(lines, 50).merges == BPETokenizer.learn(lines[::-1], 50).merges


def test_apply_reproduces_known_segmentations():
    tok = BPETokenizer(lower=True, merges=TOY_MERGES)
    assert tok.tokenize("lowest newer widest low") == ["low@@", "est", "n@@", "ew@@", "er", "widest", "low"]
    assert tok.tokenize("Lower.") == ["lower", "."]
    assert BPETokenizer(lower=False, merges=TOY_MERGES).tokenize("Lower") == ["L@@", "o@@", "w@@", "er"]
    assert get_tokenizer("bpe").tokenize("ab c") == ["a@@", "b", "c"]  # no merges: characters
    # the earliest-learned applicable pair wins, whatever its position in the word
    assert BPETokenizer(merges=[("a", "b"), ("b", "c</w>")]).tokenize("abc") == ["ab@@", "c"]
    assert BPETokenizer(merges=[("b", "c</w>"), ("a", "b")]).tokenize("abc") == ["a@@", "bc"]
    assert BPETokenizer(merges=[("a", "b")]).tokenize("abab") == ["ab@@", "a@@", "b"]  # "b</w>" differs


def test_detokenize_undoes_the_split():
    tok = BPETokenizer(lower=False, merges=TOY_MERGES)
    text = "The lowest (newest) widest, \"lower\" one."
    tokens = tok.tokenize(text)
    assert any(t.endswith("@@") for t in tokens)
    assert tok.detokenize(tokens) == text
    assert tok.detokenize(["low@@", "est", "n@@"]) == "lowest n"  # a cut-off word keeps its stub


def test_round_trip_on_multi30k_sentences(val_lines, val_bpe):
    unicode_tok = get_tokenizer("unicode", lower=True)
    exact = 0
    for line in val_lines:
        tokens = val_bpe.tokenize(line)
        back = val_bpe.detokenize(tokens)
        assert back == unicode_tok.detokenize(unicode_tok.tokenize(line))  # same spacing rules
        exact += back == " ".join(line.lower().split())
    assert exact >= 0.99 * len(val_lines)
    cased = BPETokenizer.learn(val_lines, 500, lower=False)
    assert sum(cased.detokenize(cased.tokenize(s)) == " ".join(s.split()) for s in val_lines) >= 0.99 * len(val_lines)


def test_frequent_words_become_single_tokens(val_lines, val_bpe):
    counts = count_words(val_lines, lower=True)
    for word, _ in counts.most_common(100):
        assert val_bpe.tokenize(word) == [word]
    pieces = Counter(len(val_bpe.tokenize(line)) - len(line.split()) for line in val_lines)
    assert sum(pieces.values()) == len(val_lines)  # every line tokenized; most add few pieces
    assert len(val_bpe.merges) == 2000


def test_unknown_characters_still_tokenize(val_bpe):
    text = "ein 日本 hund ☃ läuft"
    tokens = val_bpe.tokenize(text)
    assert "日@@" in tokens and "本" in tokens and "☃" in tokens
    assert val_bpe.detokenize(tokens) == text


def test_dict_round_trip_gives_identical_tokenization(val_lines, val_bpe):
    d = json.loads(json.dumps(val_bpe.to_dict()))
    assert d["name"] == "bpe" and d["lower"] is True and len(d["merges"]) == 2000
    back = tokenizer_from_dict(d)
    assert back == val_bpe and back.name == "bpe" and back.lower
    for line in val_lines[:300]:
        assert back.tokenize(line) == val_bpe.tokenize(line)
    assert BPETokenizer.from_dict(d).merges == val_bpe.merges


@pytest.mark.parametrize("d, match", [
    ({"name": "bpe", "lower": True}, "no 'merges' list"),
    ({"name": "bpe", "lower": True, "merges": [["a"]]}, "not a BPE merge"),
    ({"name": "bpe", "lower": True, "merges": [["a", ""]]}, "not a BPE merge"),
    ({"name": "bpe", "lower": True, "merges": [["a", 3]]}, "not a BPE merge"),
])
def test_bad_descriptions_give_one_line_errors(d, match):
    with pytest.raises(DataError, match=match):
        tokenizer_from_dict(d)


def naive_merges(lines, num_merges, min_count=2):
    """The learning loop written the slow, obvious way (recount every pair at every step), as
    an independent reference for learn_merges' incremental counts."""
    words = {tuple(w[:-1]) + (w[-1] + "</w>",): n for w, n in count_words(lines).items()}
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for symbols, n in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += n
        if not pairs or max(pairs.values()) < min_count:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))     # ties: smallest pair
        merges.append(best)
        merged = {}
        for symbols, n in words.items():
            out, i = [], 0
            while i < len(symbols):
                if symbols[i:i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return merges


def test_learned_merges_equal_the_slow_reference_loop():
    lines = ["zwei hunde laufen", "ein hund läuft", "zwei hunde", "ein kleiner hund läuft schnell"] * 3
    assert BPETokenizer.learn(lines, 40).merges == naive_merges(lines, 40)
    assert learn_merges(TOY, 100) == naive_merges(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6
                                                  + ["widest"] * 3, 100)


SPLIT_TRAIN = (["ein hund läuft", "zwei hunde laufen", "ein hund"], ["a dog runs", "two dogs run", "a dog"])
SPLIT_TEST = (["das zebrafell"], ["the zebra skin"])


def test_build_dataset_learns_from_train_only():
    data = build_dataset(SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_TEST, tokenizer="bpe", bpe_merges=100, min_freq=1)
    tok = data.tokenizer
    assert isinstance(tok, BPETokenizer)
    assert tok.merges == naive_merges(SPLIT_TRAIN[0] + SPLIT_TRAIN[1], 100)  # joint, train only
    assert data.train.src_tokens[2] == ["ein", "hund"]
    assert data.train.src_tokens[0][2:] == ["l@@", "ä@@", "uf@@", "t"]  # once in train: not merged
    assert len(data.test.src_tokens[0]) >= 4  # "zebrafell", a test-only word, comes in pieces
    assert tok.detokenize(data.test.src_tokens[0]) == "das zebrafell"
    leaky = BPETokenizer.learn(SPLIT_TRAIN[0] + SPLIT_TEST[0] * 2, 100)  # had it learned from test...
    assert leaky.tokenize("zebrafell") == ["zebrafell"]
    assert "hund" in data.src_vocab and "dog" in data.trg_vocab  # vocabularies stay per side
    assert "dog" not in data.src_vocab


@pytest.mark.slow
def test_load_dataset_bpe_learns_from_multi30k_train():
    data = load_dataset(tokenizer="bpe", bpe_merges=300, progress=False)
    de, en = read_multi30k("train", "de", "en", progress=False)
    assert data.tokenizer.merges[:25] == naive_merges(de + en, 25)   # greedy: a prefix is a shorter run
    test_de, test_en = read_multi30k("test_2016_flickr", "de", "en", progress=False)
    assert data.tokenizer.merges != BPETokenizer.learn(de + en + test_de + test_en, 300).merges
    assert len(data.train) == 29000 and len(data.src_vocab) < 2000


@pytest.mark.parametrize("kwargs, match", [
    ({"tokenizer": "bpe"}, "needs bpe_merges"),
    ({"tokenizer": "bpe", "bpe_merges": -1}, "needs bpe_merges"),
    ({"tokenizer": "unicode", "bpe_merges": 10}, "only for tokenizer='bpe'"),
    ({"tokenizer": BPETokenizer(), "bpe_merges": 10}, "used as is"),
])
def test_bad_bpe_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        build_dataset(SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_TEST, **kwargs)


def test_share_vocab_builds_one_vocabulary_from_both_sides():
    data = build_dataset(SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_TEST, tokenizer="bpe", bpe_merges=100,
                         min_freq=1, share_vocab=True)
    assert data.src_vocab is data.trg_vocab
    assert "hund" in data.src_vocab and "dog" in data.src_vocab
    assert data.train.src_ids[2][1] == data.src_vocab.stoi["ein"]
    assert data.train.trg_ids[2][1] == data.src_vocab.stoi["a"]
    assert "joint" in data.summary()[-1]
