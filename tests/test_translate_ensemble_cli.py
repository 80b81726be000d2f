"""tinynmt.translate and tinynmt.evaluate with several checkpoints, --nbest and --score-reference:
the printed lines against the library's numbers, and the one-line errors."""
import io
import math
import sys

import numpy as np
import pytest

from tinynmt.programs import evaluate, translate
from tinynmt.training.checkpoint import load_checkpoint, save_checkpoint
from tinynmt.training.config import Config
from tinynmt.data import EOS_IDX, PAD_IDX, SPECIALS, Vocab, get_tokenizer
from tinynmt.decoding import Ensemble, Translator, score_references
from tinynmt.nn import build_transformer

SRC_WORDS = "ein mann eine frau hund läuft schläft im park . zwei kinder spielen".split()
TRG_WORDS = "a man woman dog runs sleeps in the park . two children play".split()
TINY = dict(hid_dim=32, enc_layers=2, dec_layers=2, enc_heads=4, dec_heads=4, enc_pf_dim=48,
            dec_pf_dim=48, max_length=12)
LINES = ["ein mann schläft im park .", "", "zwei kinder spielen", "eine frau läuft", "hund"]
REFS = ["a man sleeps in the park .", "a dog", "two children play", "", "a dog runs"]


def make_run(folder, seed, trg_words=TRG_WORDS, tokenizer="whitespace"):
    """A run folder with best.npz of a random tiny model (seeded), outputs of several lengths."""
    config = Config(seed=seed, **TINY)
    src_vocab, trg_vocab = Vocab(SPECIALS + tuple(SRC_WORDS)), Vocab(SPECIALS + tuple(trg_words))
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, config, seed=config.seed)
    model.decoder.fc_out.bias.data[EOS_IDX] += 1.5
    folder.mkdir(parents=True)
    save_checkpoint(folder / "best.npz", model, config, src_vocab, trg_vocab, get_tokenizer(tokenizer))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """a, b: the same vocabularies, different weights; c: another target vocabulary; d: another tokenizer."""
    root = tmp_path_factory.mktemp("runs")
    return dict(a=make_run(root / "a", 1), b=make_run(root / "b", 2),
                c=make_run(root / "c", 3, trg_words=TRG_WORDS[::-1]), d=make_run(root / "d", 4, tokenizer="unicode"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    (folder / "src.de").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    (folder / "ref.en").write_text("\n".join(REFS) + "\n", encoding="utf-8")
    return folder / "src.de", folder / "ref.en"


def library(runs, names):
    """(first checkpoint, model or Ensemble) as the library loads them."""
    ckpts = [load_checkpoint(runs[n]) for n in names]
    return ckpts[0], ckpts[0].model if len(ckpts) == 1 else Ensemble([c.model for c in ckpts])


def run_main(program, argv, tmp_path, capsys):
    """main(argv + --output FILE) -> (exit status, the file's lines, stderr)."""
    out = tmp_path / "out.txt"
    status = program.main([*map(str, argv), "--output", str(out)])
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    return status, text.split("\n")[:-1], capsys.readouterr().err


@pytest.mark.parametrize("beam", [1, 3])
def test_ensembles_translate_as_the_library_and_a_model_with_itself_as_the_model(runs, files, tmp_path, capsys, beam):
    common = ["--input", files[0], "--beam", beam, "--max-len", 9]
    _, alone, _ = run_main(translate, ["--checkpoint", runs["a"], *common], tmp_path, capsys)
    status, twice, err = run_main(translate, ["--checkpoint", runs["a"], runs["a"] / "best.npz", *common], tmp_path, capsys)
    assert status == 0 and err == "" and twice == alone
    status, both, _ = run_main(translate, ["--checkpoint", runs["a"], runs["b"], *common], tmp_path, capsys)
    ckpt, model = library(runs, "ab")
    expected = Translator(model, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, beam=beam, max_steps=9).translate(LINES)
    assert status == 0 and both == expected


def test_sentences_may_follow_several_checkpoints(runs, tmp_path, capsys):
    status, got, _ = run_main(translate, ["--checkpoint", runs["a"], runs["b"] / "best.npz", "zwei kinder", "hund"],
                              tmp_path, capsys)
    ckpt, model = library(runs, "ab")
    translator = Translator(model, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, max_steps=12)
    assert status == 0 and got == translator.translate(["zwei kinder", "hund"])


@pytest.mark.parametrize("program", [translate, evaluate])
@pytest.mark.parametrize("other, what", [("c", "target vocabularies (token 4 is 'a' vs 'play')"),
                                         ("d", "tokenizers (WhitespaceTokenizer(lower=True) vs "
                                               "UnicodeTokenizer(lower=True))")])
def test_mismatched_checkpoints_are_one_line_errors(runs, files, capsys, program, other, what):
    argv = ["--checkpoint", str(runs["a"]), str(runs[other] / "best.npz"), "--input" if program is translate
            else "--src-file", str(files[0]), *([] if program is translate else ["--ref-file", str(files[1])])]
    assert program.main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {runs['a'] / 'best.npz'} and {runs[other] / 'best.npz'} have different {what}; "
                   f"an ensemble needs the same ones\n")


def test_nbest_lines(runs, files, tmp_path, capsys):
    status, got, _ = run_main(translate, ["--checkpoint", runs["a"], runs["b"], "--input", files[0], "--beam", 4,
                                          "--nbest", 3, "--max-len", 9], tmp_path, capsys)
    assert status == 0 and len(got) == 4 * len(LINES)
    ckpt, model = library(runs, "ab")
    records = Translator(model, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, beam=4, max_steps=9,
                         nbest=3).translations(LINES)
    for i, (line, record) in enumerate(zip(LINES, records)):
        block = got[4 * i:4 * i + 4]
        assert block[0] == f"S-{i}\t{line}"
        fields = [h.split("\t") for h in block[1:]]
        assert all(f[0] == f"H-{i}" and len(f) == 3 for f in fields)
        if not line:
            assert [f[1:] for f in fields] == [["nan", ""]] * 3
            continue
        assert [f[2] for f in fields] == [h.text for h in record.nbest] and fields[0][2] == record.text
        np.testing.assert_allclose([float(f[1]) for f in fields], [h.score for h in record.nbest], atol=1e-6)
        assert [float(f[1]) for f in fields] == sorted((float(f[1]) for f in fields), reverse=True)


def test_nbest_on_stdin_counts_lines_from_zero(runs, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("hund\n\nzwei kinder\n".encode())))
    assert translate.main(["--checkpoint", str(runs["a"]), "--beam", "2", "--nbest", "2"]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert [line.split("\t")[0] for line in lines[:-1]] == ["S-0", "H-0", "H-0", "S-1", "H-1", "H-1", "S-2", "H-2", "H-2"]


def score_lines_by_library(runs, names, sources=LINES, references=REFS):
    ckpt, model = library(runs, names)
    return score_references(model, sources, references, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer)


@pytest.mark.parametrize("names", ["a", "ab"])
def test_score_reference_lines(runs, files, tmp_path, capsys, names):
    checkpoints = [runs[n] for n in names]
    status, got, _ = run_main(translate, ["--checkpoint", *checkpoints, "--score-reference", "--input", files[0],
                                          "--reference", files[1]], tmp_path, capsys)
    assert status == 0 and len(got) == len(LINES)
    for line, expected in zip(got, score_lines_by_library(runs, names)):
        total, mean, tokens = line.split("\t")
        if expected is None:                                  # an empty side: not scored
            assert (total, mean, tokens) == ("nan", "nan", "")
            continue
        per_token = [float(x) for x in tokens.split()]
        assert len(per_token) == len(expected)                # the reference's tokens and <eos>
        np.testing.assert_allclose(per_token, expected, atol=1e-4)
        assert math.isclose(float(total), float(expected.sum()), abs_tol=1e-5)
        assert math.isclose(float(mean), float(total) / len(per_token), abs_tol=1e-6)
    status, from_evaluate, _ = run_main(evaluate, ["--checkpoint", *checkpoints, "--score-reference", "--src-file",
                                                   files[0], "--ref-file", files[1]], tmp_path, capsys)
    assert status == 0 and from_evaluate == got


def test_evaluate_an_ensemble(runs, files, capsys):
    argv = ["--src-file", str(files[0]), "--ref-file", str(files[1]), "--max-len", "9"]
    assert evaluate.main(["--checkpoint", str(runs["a"]), *argv]) == 0
    alone = capsys.readouterr().out.split("\n")
    assert evaluate.main(["--checkpoint", str(runs["a"]), str(runs["a"]), *argv]) == 0
    twice = capsys.readouterr().out.split("\n")
    assert twice[0].startswith(f"checkpoints {runs['a'] / 'best.npz'}, {runs['a'] / 'best.npz'}: ")
    assert twice[1:3] == alone[1:3]                                   # the same loss lines
    assert [l for l in twice if l.startswith("BLEU")] == [l for l in alone if l.startswith("BLEU")]
    ckpt, model = library(runs, "ab")
    one = evaluate.evaluate_loss(ckpt.model, LINES, REFS, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, batch_size=2)
    two = evaluate.evaluate_loss(model, LINES, REFS, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, batch_size=2)
    by_hand = -sum(float(s.sum()) for s in score_lines_by_library(runs, "ab") if s is not None)
    assert two.n_tokens == one.n_tokens and math.isclose(two.token_nll * two.n_tokens, by_hand, rel_tol=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "A", "B", "--attention", "x.png", "hund"], "--attention draws one model's attention: "
                                                                 "give one --checkpoint, not 2"),
    (["--checkpoint", "A", "--nbest", "2", "hund"], "--nbest must be in [1, --beam 1], got 2"),
    (["--checkpoint", "A", "--beam", "2", "--nbest", "0", "hund"], "--nbest must be in [1, --beam 2], got 0"),
    (["--checkpoint", "A", "--score-reference", "--input", "SRC"], "--score-reference needs --input FILE and "
                                                                   "--reference FILE (and no sentences)"),
    (["--checkpoint", "A", "--reference", "REF", "--input", "SRC"], "--reference is read only with --score-reference"),
    (["--checkpoint", "A", "--score-reference", "--input", "SRC", "--reference", "SHORT"], "differ in length"),
    (["--checkpoint", "A", "--score-reference", "--input", "SRC", "--reference", "REF", "--beam", "2",
      "--nbest", "2"], "--score-reference scores references: it takes no --nbest or --attention"),
    (["hund", "--checkpoint", "A", "zwei"], "give the sentences in one place"),
])
def test_bad_flag_combinations_are_one_line_errors(runs, files, tmp_path, capsys, argv, message):
    short = tmp_path / "short.en"
    short.write_text("a dog\n", encoding="utf-8")
    paths = {"A": runs["a"], "B": runs["b"], "SRC": files[0], "REF": files[1], "SHORT": short}
    assert translate.main([str(paths.get(a, a)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
