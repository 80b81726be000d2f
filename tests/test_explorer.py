"""The explorer page (tinynmt/interop/explorer.py, translate --explore): its numbers are the model's,
the page is self-contained, bad paths are refused, and in headless Chromium the page shows the
model's weights to 3 decimals (those tests skip only where Chromium or Selenium cannot be found)."""
import json
import os
import re

import numpy as np
import pytest

from tinynmt import no_grad
from tinynmt.data import EOS_IDX, PAD_IDX, SOS_IDX, SPECIALS, Vocab, get_tokenizer
from tinynmt.decoding import Translator, attention_of, eval_mode
from tinynmt.interop.explorer import DATA_SLOT, explorer_data, page_html, write_page
from tinynmt.nn import build_transformer
from tinynmt.programs.translate import main as translate
from tinynmt.training.checkpoint import load_checkpoint, save_checkpoint
from tinynmt.training.config import Config

SRC_WORDS = "ein mann eine frau hund läuft schläft im park . zwei kinder@@ spielen".split()
TRG_WORDS = "a man woman dog runs sleeps in the park . two child@@ ren play".split()
TINY = dict(hid_dim=32, enc_layers=2, dec_layers=2, enc_heads=4, dec_heads=4, enc_pf_dim=48,
            dec_pf_dim=48, max_length=12)
SENTENCES = ["Ein Mann schläft im Park .", "zwei kinder@@ spielen xyzzy", ""]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny random checkpoint, and the page, JSON and empty viewer that translate writes from it."""
    folder = tmp_path_factory.mktemp("explorer")
    config = Config(**TINY)
    src_vocab, trg_vocab = Vocab(SPECIALS + tuple(SRC_WORDS)), Vocab(SPECIALS + tuple(TRG_WORDS))
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, config, seed=config.seed)
    model.decoder.fc_out.bias.data[EOS_IDX] += 1.5             # outputs of several lengths
    save_checkpoint(folder / "best.npz", model, config, src_vocab, trg_vocab, get_tokenizer("whitespace"))
    options = ["--beam", "3", "--nbest", "3", "--max-len", "9"]
    argv = ["--checkpoint", str(folder), *options, "--explore", str(folder / "page.html"),
            "--explore-json", str(folder / "data.json"), *SENTENCES]
    assert translate(argv) == 0
    assert translate(["--checkpoint", str(folder), "--explore", str(folder / "viewer.html")]) == 0
    return folder


@pytest.fixture(scope="module")
def data(made):
    return json.loads((made / "data.json").read_text(encoding="utf-8"))


def independent_attention(model, src_ids, trg_ids):
    """Every layer's attention weights of one sentence, by walking the layers by hand (eval, no
    dropout): (encoder, decoder, cross) lists of (H, Q, K) arrays, one per layer."""
    encoder, decoder, cross = [], [], []
    with no_grad(), eval_mode(model):
        src, trg = np.array([src_ids]), np.array([trg_ids])
        src_mask, trg_mask = model.make_src_mask(src), model.make_trg_mask(trg)
        enc, dec = model.encoder, model.decoder
        x = enc.tok_embedding(src) * enc.scale + enc.pos_embedding(np.arange(src.shape[1]))
        for layer in enc.layers:
            encoder.append(layer.self_attention(x, x, x, src_mask)[1].data[0])
            x = layer(x, src_mask)
        y = dec.tok_embedding(trg) * dec.scale + dec.pos_embedding(np.arange(trg.shape[1]))
        for layer in dec.layers:
            _y, weights = layer.self_attention(y, y, y, trg_mask)
            decoder.append(weights.data[0])
            query = layer.layer_norm(y + _y)                   # the input of its cross-attention
            cross.append(layer.encoder_attention(query, x, x, src_mask)[1].data[0])
            y, _ = layer(y, x, trg_mask, src_mask)
    return encoder, decoder, cross


def model_numbers(made, sentence, hypothesis):
    """What the checkpoint's model gives a sentence's source and a hypothesis' tokens (JSON entries)."""
    ckpt = load_checkpoint(made)
    src_ids = ckpt.src_vocab.encode(sentence["src_tokens"][1:-1])
    src_ids = [SOS_IDX, *src_ids, EOS_IDX]
    trg_ids = ckpt.trg_vocab.encode(hypothesis["tokens"])
    return ckpt, src_ids, trg_ids, independent_attention(ckpt.model, src_ids, trg_ids[:-1])


# ----- the data: the model's numbers, from the decoding translate printed
def test_the_json_holds_every_layers_attention_of_the_model(made, data):
    sentence = data["sentences"][0]
    assert data["model"] == {"enc_layers": 2, "dec_layers": 2, "enc_heads": 4, "dec_heads": 4, "hid_dim": 32}
    for hypothesis in sentence["hypotheses"]:
        ckpt, src_ids, trg_ids, (encoder, decoder, cross) = model_numbers(made, sentence, hypothesis)
        T, S = len(trg_ids) - 1, len(src_ids)
        for kind, expected, shape in (("decoder_attention", decoder, (4, T, T)), ("cross_attention", cross, (4, T, S))):
            got = np.array(hypothesis[kind])
            assert got.shape == (2, *shape)
            np.testing.assert_allclose(got, np.array(expected), atol=1e-5)
        np.testing.assert_allclose(np.array(sentence["encoder_attention"]), np.array(encoder), atol=1e-5)
        last_cross = attention_of(ckpt.model, src_ids, trg_ids[1:-1] if hypothesis["finished"] else trg_ids[1:],
                                  hypothesis["finished"])
        np.testing.assert_allclose(np.array(hypothesis["cross_attention"][-1]), last_cross, atol=1e-5)
    layers = np.array(sentence["encoder_attention"])
    assert not np.allclose(layers[0], layers[1])               # the layers differ: not one copied


def test_the_hypotheses_and_log_probs_are_the_searchs(made, data):
    ckpt = load_checkpoint(made)
    translator = Translator(ckpt.model, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer, beam=3, nbest=3,
                            max_steps=9, warn=lambda m: None)
    records = translator.translations(SENTENCES)
    assert data["decoding"] == {"beam": 3, "lenpen": 1.0, "max_len": 9, "nbest": 3}
    checked = 0
    for record, sentence in zip(records, data["sentences"]):
        finite = [h for h in record.nbest if np.isfinite(h.score)]
        assert [h["text"] for h in sentence["hypotheses"]] == [h.text for h in finite]
        for h, entry in zip(finite, sentence["hypotheses"]):
            log_probs = np.array(entry["log_probs"])
            assert len(log_probs) == len(h.ids) + h.finished   # one per predicted token, <eos> included
            assert entry["score"] == pytest.approx(h.score, abs=1e-6)
            assert log_probs.sum() / len(log_probs) == pytest.approx(h.score, abs=1e-4)  # lenpen 1
            checked += 1
    assert checked >= 4
    assert explorer_data(translator, SENTENCES, records)["sentences"][1]["hypotheses"][0]["log_probs"] == \
        data["sentences"][1]["hypotheses"][0]["log_probs"]


def test_tokens_unknown_words_cut_and_empty_sentences(made, tmp_path, data, capsys):
    second, empty = data["sentences"][1], data["sentences"][2]
    assert second["src_tokens"] == ["<sos>", "zwei", "kinder@@", "spielen", "xyzzy", "<eos>"]
    assert second["src_unknown"] == [False, False, False, False, True, False]
    assert empty["source"] == "" and empty["src_tokens"] == [] and empty["hypotheses"] == []
    long = " ".join(["ein mann"] * 8)                          # 16 tokens: 10 fit
    assert translate(["--checkpoint", str(made), "--explore-json", str(tmp_path / "long.json"), long]) == 0
    assert "dropped the last 6" in capsys.readouterr().err
    cut = json.loads((tmp_path / "long.json").read_text())["sentences"][0]
    assert cut["dropped"] == 6 and len(cut["src_tokens"]) == 12


# ----- the page: one file, nothing fetched
def test_the_page_is_self_contained_and_holds_the_data(made, data):
    html = (made / "page.html").read_text(encoding="utf-8")
    assert not re.search(r"https?:|//cdn|\bimport\(|<iframe", html)
    assert re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", html) == ["data:,"]   # only the empty favicon
    inline = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(inline) == data
    viewer = (made / "viewer.html").read_text(encoding="utf-8")
    assert DATA_SLOT not in viewer and '<script type="application/json" id="explorer-data">null</script>' in viewer


def test_text_in_the_data_cannot_end_the_script_block():
    hostile = {"format": "tinynmt.explorer", "version": 1, "sentences": [{"source": "</script><script>alert(1)</script><!--"}]}
    html = page_html(hostile)
    assert html.count("</script>") == page_html().count("</script>") and "<!--" not in html.split("<html")[1]
    inline = re.search(r'id="explorer-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(inline) == hostile


def test_a_page_replaced_through_a_symlink_keeps_the_link_and_the_mode(tmp_path):
    real, link = tmp_path / "real.html", tmp_path / "link.html"
    real.write_text("old")
    real.chmod(0o640)
    link.symlink_to(real)
    write_page(link)
    assert link.is_symlink() and "explorer-data" in real.read_text() and real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.html", "real.html"]   # no temporary left


# ----- the command line's refusals: one error line, exit 2, nothing overwritten
@pytest.mark.parametrize("target", ["checkpoint file", "run folder", "input", "symlink to checkpoint", "folder"])
def test_an_explore_path_that_is_an_input_is_refused(made, tmp_path, capsys, target):
    source = tmp_path / "in.de"
    source.write_text("ein mann\n")
    (tmp_path / "link.npz").symlink_to(made / "best.npz")
    path = {"checkpoint file": made / "best.npz", "run folder": made, "input": source,
            "symlink to checkpoint": tmp_path / "link.npz", "folder": tmp_path}[target]
    before = (made / "best.npz").read_bytes()
    assert translate(["--checkpoint", str(made), "--input", str(source), "--explore", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --explore") or err.startswith("error: cannot write --explore")
    assert len(err.strip().splitlines()) == 1
    assert (made / "best.npz").read_bytes() == before and source.read_text() == "ein mann\n"


@pytest.mark.parametrize("argv, message", [
    (["--explore-json", "x.json"], "--explore-json exports the sentences translated"),
    (["--explore", "same.html", "--explore-json", "same.html", "ein mann"], "name the same file"),
    (["--explore", "no/such/folder/p.html", "ein mann"], "no folder"),
])
def test_explore_options_that_do_not_fit_are_refused(made, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert translate(["--checkpoint", str(made), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_an_ensemble_is_refused(made, tmp_path, capsys):
    code = translate(["--checkpoint", str(made), str(made / "best.npz"), "--explore", str(tmp_path / "p.html"), "ein"])
    assert code == 2 and "one model's attention" in capsys.readouterr().err


def test_the_empty_viewer_does_not_read_stdin(made, tmp_path, monkeypatch, capsys):
    class NoStdin:
        @property
        def buffer(self):
            raise AssertionError("stdin was read")
    monkeypatch.setattr("sys.stdin", NoStdin())
    assert translate(["--checkpoint", str(made), "--explore", str(tmp_path / "v.html")]) == 0
    assert capsys.readouterr().out == "" and "explorer-data\">null<" in (tmp_path / "v.html").read_text()


# ----- in a real browser
@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system's packages, driven by Selenium (nothing downloaded)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("needs selenium: pip install -e '.[dev]'")
    for program in (CHROMIUM, CHROMEDRIVER):
        if not os.access(program, os.X_OK):
            pytest.skip(f"needs {program}: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def console_errors(driver):
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def click(driver, selector):
    from selenium.webdriver.common.by import By
    driver.find_element(By.CSS_SELECTOR, selector).click()


def shown_weights(driver, table, head):
    """The numbers a details table shows for one head, in position order."""
    from selenium.webdriver.common.by import By
    return [float(td.text) for td in driver.find_elements(By.CSS_SELECTOR, f"#{table} td[data-head='{head}']")]


def choose(driver, kind, layer, head):
    """Pick an attention kind, a layer (from 0) and one head, as a user would."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    click(driver, f"input[name=kind][value={kind}]")
    Select(driver.find_element(By.ID, "layer")).select_by_value(str(layer))
    click(driver, "#heads-none")
    click(driver, f"#head-{head}")


def check_weights_in_the_page(driver, made, data):
    """Click tokens and heads; the numbers shown are the model's to 1e-3; another layer shows others."""
    sentence = data["sentences"][0]
    _, _, _, (encoder, decoder, cross) = model_numbers(made, sentence, sentence["hypotheses"][0])
    choose(driver, "encoder", 0, 2)
    click(driver, "#src-tokens .token[data-index='3']")        # "schläft": pinned
    np.testing.assert_allclose(shown_weights(driver, "attends-to", 2), encoder[0][2, 3], atol=1e-3)
    np.testing.assert_allclose(shown_weights(driver, "attended-by", 2), encoder[0][2, :, 3], atol=1e-3)
    choose(driver, "encoder", 1, 2)
    np.testing.assert_allclose(shown_weights(driver, "attends-to", 2), encoder[1][2, 3], atol=1e-3)
    assert not np.allclose(encoder[0][2, 3], encoder[1][2, 3], atol=2e-3)  # the layer switch shows other numbers
    choose(driver, "cross", 1, 0)                             # the source token is attended by the target
    np.testing.assert_allclose(shown_weights(driver, "attended-by", 0), cross[1][0, :, 3], atol=1e-3)
    click(driver, "#trg-tokens .token[data-index='1']")
    np.testing.assert_allclose(shown_weights(driver, "attends-to", 0), cross[1][0, 1], atol=1e-3)
    choose(driver, "decoder", 0, 1)
    np.testing.assert_allclose(shown_weights(driver, "attends-to", 1), decoder[0][1, 1], atol=1e-3)


def test_the_page_in_chromium_shows_the_models_numbers(browser, made, data, tmp_path):
    from selenium.webdriver.common.by import By
    browser.get((made / "page.html").as_uri())
    check_weights_in_the_page(browser, made, data)
    first = data["sentences"][0]["hypotheses"]
    shown = [float(e.text) for e in browser.find_elements(By.CSS_SELECTOR, "#nbest li .score")]
    np.testing.assert_allclose(shown, [h["score"] for h in first], atol=1e-3)
    lp = [float(e.text.split()[-1]) for e in browser.find_elements(By.CSS_SELECTOR, "#trg-tokens .lp")]
    np.testing.assert_allclose(lp, first[0]["log_probs"], atol=1e-3)
    click(browser, "#nbest li[data-hyp='1']")                  # another hypothesis: its own numbers
    lp = [float(e.text.split()[-1]) for e in browser.find_elements(By.CSS_SELECTOR, "#trg-tokens .lp")]
    np.testing.assert_allclose(lp, first[1]["log_probs"], atol=1e-3)
    browser.find_element(By.CSS_SELECTOR, "#sentence option[value='1']").click()
    assert "piece" in browser.find_element(By.CSS_SELECTOR, "#src-tokens .token[data-index='2']").get_attribute("class")
    assert "unk" in browser.find_element(By.CSS_SELECTOR, "#src-tokens .token[data-index='4']").get_attribute("class")
    browser.find_element(By.CSS_SELECTOR, "#sentence option[value='2']").click()   # the empty line
    assert browser.find_element(By.ID, "not-translated").is_displayed()
    assert browser.save_screenshot(str(tmp_path / "explorer.png"))
    assert (tmp_path / "explorer.png").read_bytes()[:4] == b"\x89PNG"
    assert console_errors(browser) == []


def test_the_empty_viewer_in_chromium_loads_the_json(browser, made, data, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    browser.get((made / "viewer.html").as_uri())
    assert not browser.find_element(By.ID, "page").is_displayed()
    browser.find_element(By.ID, "load-json").send_keys(str(bad))
    WebDriverWait(browser, 10).until(lambda d: "Not an explorer JSON file" in d.find_element(By.ID, "message").text)
    browser.find_element(By.ID, "load-json").send_keys(str(made / "data.json"))
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "page").is_displayed())
    check_weights_in_the_page(browser, made, data)
    assert console_errors(browser) == []
