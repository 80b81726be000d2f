"""Translator (text in, text out), translate_sentence's attention, and the attention figure."""
import numpy as np
import pytest

from tinynmt.programs.attention_plot import plot_attention
from tinynmt.data import EOS_IDX, PAD_IDX, SPECIALS, Vocab, get_tokenizer
from tinynmt.decoding import Translator, beam_search, greedy_search, translate_sentence
from tinynmt.nn import ModelConfig, build_transformer

SRC_WORDS = "ein mann eine frau hund läuft schläft im park . zwei kinder spielen".split()
TRG_WORDS = "a man woman dog runs sleeps in the park . two children play".split()


@pytest.fixture(scope="module")
def setup():
    src_vocab, trg_vocab = Vocab(SPECIALS + tuple(SRC_WORDS)), Vocab(SPECIALS + tuple(TRG_WORDS))
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, ModelConfig(
        hid_dim=32, enc_layers=2, dec_layers=2, enc_heads=4, dec_heads=4, enc_pf_dim=48, dec_pf_dim=48,
        max_length=12), seed=3)
    model.decoder.fc_out.bias.data[EOS_IDX] += 1.5  # some outputs end early, some run to max_steps
    return model.eval(), src_vocab, trg_vocab, get_tokenizer("whitespace", lower=True)


SENTENCES = ["Ein Mann schläft.", "", "zwei kinder spielen im park .", "   ", "xyzzy quux",
             "eine frau läuft", "ein hund", "ein mann und eine frau und zwei kinder spielen im park mit hund ."]


@pytest.mark.parametrize("beam", [1, 3])
def test_translator_keeps_order_and_lines(setup, beam):
    model, src_vocab, trg_vocab, tok = setup
    warnings = []
    translator = Translator(model, src_vocab, trg_vocab, tok, beam=beam, max_steps=9, batch_size=2,
                            warn=warnings.append)
    records = translator.translations(SENTENCES)
    assert len(records) == len(SENTENCES)
    for sentence, record in zip(SENTENCES, records):
        if not sentence.strip():
            assert record.text == "" and record.score is None  # not decoded
            continue
        # each sentence alone gives what it gave in the sorted, batched run
        src = np.array([record.src_ids])
        alone = beam_search(model, src, beam=beam, max_steps=9) if beam > 1 else greedy_search(model, src, max_steps=9)
        assert record.ids == alone.tokens[0]
        assert record.tokens == trg_vocab.decode(alone.tokens[0])
        assert record.text == tok.detokenize(record.tokens)
        assert record.score is not None and len(record.ids) <= 9
    # the unknown-only line was translated from <sos> <unk> <unk> <eos>
    assert records[4].src_ids == [2, 0, 0, 3]
    # the 14-token line was cut to the model's 10 (12 positions with <sos>/<eos>), with one warning
    assert len(records[7].src_ids) == 12 and len(records[7].src_tokens) == 10
    assert warnings == ["sentence 8: 14 tokens, more than the model's 10 (max_length 12 with "
                        "<sos>/<eos>): dropped the last 4"]
    assert translator.translate(SENTENCES) == [r.text for r in records]


def test_translator_nbest_lists(setup):
    model, src_vocab, trg_vocab, tok = setup
    best = Translator(model, src_vocab, trg_vocab, tok, beam=4, max_steps=9, batch_size=3,
                      warn=lambda m: None).translations(SENTENCES)
    records = Translator(model, src_vocab, trg_vocab, tok, beam=4, max_steps=9, batch_size=3, nbest=3,
                         warn=lambda m: None).translations(SENTENCES)
    for sentence, one, record in zip(SENTENCES, best, records):
        if not sentence.strip():
            assert record.nbest == [] and record.score is None
            continue
        assert len(record.nbest) == 3 and record.nbest[0].ids == one.ids == record.ids
        assert [h.score for h in record.nbest] == sorted((h.score for h in record.nbest), reverse=True)
        assert record.nbest[0].score == record.score and record.nbest[0].text == record.text
        src = np.array([record.src_ids])
        alone = beam_search(model, src, beam=4, max_steps=9, nbest=3)
        assert [h.ids for h in record.nbest] == alone.tokens
        assert [h.text for h in record.nbest] == [tok.detokenize(trg_vocab.decode(t)) for t in alone.tokens]
    with pytest.raises(ValueError, match="nbest"):
        Translator(model, src_vocab, trg_vocab, tok, beam=2, nbest=3)


def test_translate_sentence_attention(setup):
    model, src_vocab, trg_vocab, tok = setup
    tokens, attention = translate_sentence(model, "ein mann schläft im park .", src_vocab, trg_vocab, tok, max_len=9)
    hyps = greedy_search(model, np.array([[2, *src_vocab.encode("ein mann schläft im park .".split()), 3]]), max_steps=9)
    assert tokens == trg_vocab.decode(hyps.tokens[0])
    assert "<eos>" not in tokens and "<sos>" not in tokens
    rows = len(tokens) + int(hyps.finished[0])
    assert isinstance(attention, np.ndarray)
    assert attention.shape == (4, rows, 8)                  # (heads, output steps, <sos> + 6 + <eos>)
    np.testing.assert_allclose(attention.sum(axis=-1), 1, rtol=1e-5)
    # token lists are taken as they are (lowercased like the tutorial)
    tokens2, attention2 = translate_sentence(model, "Ein Mann schläft im Park .".split(), src_vocab, trg_vocab, tok, max_len=9)
    assert tokens2 == tokens
    np.testing.assert_array_equal(attention2, attention)


def test_translate_sentence_shapes_cover_both_endings(setup):
    model, src_vocab, trg_vocab, tok = setup
    endings = set()
    for sentence in filter(str.strip, SENTENCES[:-1]):
        tokens, attention = translate_sentence(model, sentence, src_vocab, trg_vocab, tok, max_len=9)
        endings.add(attention.shape[1] - len(tokens))   # 1: ended with <eos>, 0: cut at max_len
        assert attention.shape[2] == len(sentence.split()) + 2
    with pytest.warns(UserWarning, match="dropped the last 4"):
        tokens, attention = translate_sentence(model, SENTENCES[-1], src_vocab, trg_vocab, tok, max_len=9)
    assert attention.shape[2] == 12
    assert endings == {0, 1}


def test_plot_attention_writes_png(setup, tmp_path):
    model, src_vocab, trg_vocab, tok = setup
    tokens, attention = translate_sentence(model, "zwei kinder spielen", src_vocab, trg_vocab, tok, max_len=5)
    rows = tokens + ["<eos>"] * (attention.shape[1] - len(tokens))
    path = plot_attention(["zwei", "kinder", "spielen"], rows, attention, tmp_path / "att.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="does not match"):
        plot_attention(["zwei"], rows, attention, tmp_path / "bad.png")


def test_translator_rejects_bad_settings(setup):
    model, src_vocab, trg_vocab, tok = setup
    with pytest.raises(ValueError, match="max_steps"):
        Translator(model, src_vocab, trg_vocab, tok, max_steps=13)
    with pytest.raises(ValueError, match="beam"):
        Translator(model, src_vocab, trg_vocab, tok, beam=0)
