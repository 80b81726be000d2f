"""The prepared folder on disk: written atomically, read back memory-mapped.

    save_prepared(data, "data/xx-yy")       # a DataError if the folder exists and is not empty
    data = load_prepared("data/xx-yy")      # ids and offsets memory-mapped; vocabularies in memory

What the folder holds (all sides named by their language label):
    manifest.json                 format, languages, options, source files (path, bytes, sha256,
                                  lines), per split: counts kept and dropped by reason, tokens
    tokenizer.json                the tokenizer: name, lowercasing and the BPE merges, in order
    vocab.<lang>.json             each side's vocabulary (the same file twice when shared)
    <split>.<lang>.ids.npy        every kept sentence's ids, <sos>/<eos> framed, concatenated;
                                  uint8/uint16/uint32, the smallest that holds the vocabulary
    <split>.<lang>.offsets.npy    int64, one more than the sentences: sentence i is
                                  ids[offsets[i]:offsets[i + 1]]
    <split>.<lang>                val and test: the kept pairs' raw lines (for BLEU; a PREFIX)
Splits: train, val, and test, test1, ... for the test prefixes in the order given.

The folder is written under a hidden temporary name beside its target, each file fsynced,
then renamed into place: a crash leaves no half folder (at most a hidden .NAME.*.tmp one).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..files import fsync_dir
from .errors import DataError
from .prepared import PackedSide, PreparedData, PreparedSplit
from .tokenize import tokenizer_from_dict
from .vocab import Vocab

FORMAT = "tinynmt.prepared"
VERSION = 1


def _fsynced(path: Path, write) -> None:
    """Write a file with write(f), flushed and fsynced."""
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _write_lines(path: Path, lines: List[str]) -> None:
    _fsynced(path, lambda f: f.write("".join(line + "\n" for line in lines).encode("utf-8")))


def _read_lines(path: Path) -> List[str]:
    """Lines written by _write_lines, exactly (no "\\r" or BOM handling: they are ours)."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    lines.pop()
    return lines


def save_prepared(data: PreparedData, out) -> Path:
    """Write `data` as a prepared folder at `out` (see the module docstring); return its path."""
    out = Path(out).expanduser()
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise DataError(f"{out} already exists; remove it or pick another --out (a prepared folder "
                        f"is never written over)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        _write_all(data, tmp)
        os.rename(tmp, out)      # replaces an empty folder; fails if one appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(out.parent)
    return out


def _write_all(data: PreparedData, folder: Path) -> None:
    manifest = dict(data.manifest, format=FORMAT, version=VERSION)
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    _fsynced(folder / "manifest.json", lambda f: f.write(text.encode("utf-8")))
    tok = json.dumps(data.tokenizer.to_dict(), ensure_ascii=False) + "\n"
    _fsynced(folder / "tokenizer.json", lambda f: f.write(tok.encode("utf-8")))
    for lang, vocab in ((data.src_lang, data.src_vocab), (data.trg_lang, data.trg_vocab)):
        vocab.save(folder / f"vocab.{lang}.json")
    for split in (data.train, data.val, *data.tests):
        for lang, side, lines in ((data.src_lang, split.src, split.src_text),
                                  (data.trg_lang, split.trg, split.trg_text)):
            flat, offsets = side.packed()
            _fsynced(folder / f"{split.name}.{lang}.ids.npy", lambda f: np.save(f, flat))
            _fsynced(folder / f"{split.name}.{lang}.offsets.npy", lambda f: np.save(f, offsets))
            if lines is not None:
                _write_lines(folder / f"{split.name}.{lang}", lines)


def read_manifest(folder) -> dict:
    """The manifest of a prepared folder, checked for its format and version."""
    folder = Path(folder).expanduser()
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise DataError(f"{folder}: no such prepared folder (make one with python -m tinynmt.prepare)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{folder}: not a prepared folder (no manifest.json); make one with "
                        f"python -m tinynmt.prepare") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: not a readable manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a tinynmt prepared-data manifest")
    if manifest.get("version") != VERSION:
        raise DataError(f"{path}: prepared-data version {manifest.get('version')!r}; this tinynmt reads "
                        f"version {VERSION}: prepare the corpus again")
    return manifest


def _load_side(folder: Path, name: str, lang: str, vocab_size: int, kept: int) -> PackedSide:
    """Map one side's ids and offsets, checking that they fit together."""
    ids_path, off_path = folder / f"{name}.{lang}.ids.npy", folder / f"{name}.{lang}.offsets.npy"
    try:
        flat = np.load(ids_path, mmap_mode="r", allow_pickle=False)
        offsets = np.load(off_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{folder}: cannot read the {name} {lang} ids ({type(err).__name__}: {err}); "
                        f"prepare the corpus again") from None
    ok = (flat.ndim == 1 and flat.dtype.kind == "u" and offsets.ndim == 1 and offsets.dtype == np.int64
          and len(offsets) == kept + 1 and offsets[0] == 0 and offsets[-1] == len(flat)
          and bool(np.all(np.diff(offsets) >= 2)))
    if not ok:
        raise DataError(f"{folder}: the {name} {lang} ids and offsets do not fit together or the "
                        f"manifest; the folder is damaged, prepare the corpus again")
    return PackedSide(flat, offsets, vocab_size)


def load_prepared(folder, splits: Optional[List[str]] = None) -> PreparedData:
    """Read a prepared folder (only the splits named, when given; train and val always)."""
    folder = Path(folder).expanduser()
    manifest = read_manifest(folder)
    try:
        src, trg = manifest["src"], manifest["trg"]
        tokenizer = tokenizer_from_dict(json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")))
        src_vocab = Vocab.load(folder / f"vocab.{src}.json")
        trg_vocab = src_vocab if manifest["vocab"]["shared"] else Vocab.load(folder / f"vocab.{trg}.json")
        loaded = []
        for name, info in manifest["splits"].items():
            if splits is not None and name not in ("train", "val", *splits):
                continue
            kept = info["counts"]["kept"]
            sides = [_load_side(folder, name, lang, len(vocab), kept)
                     for lang, vocab in ((src, src_vocab), (trg, trg_vocab))]
            text = [None, None] if name == "train" else [_read_lines(folder / f"{name}.{lang}") for lang in (src, trg)]
            if any(t is not None and len(t) != kept for t in text):
                raise DataError(f"{folder}: the {name} text files do not hold {kept} lines; prepare again")
            loaded.append(PreparedSplit(name, *sides, info["counts"], *text))
    except (KeyError, TypeError) as err:
        raise DataError(f"{folder / 'manifest.json'}: incomplete manifest ({type(err).__name__}: {err})") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{folder}: cannot read the prepared data ({err})") from None
    if len(loaded) < 2 or loaded[0].name != "train" or loaded[1].name != "val":
        raise DataError(f"{folder}: the manifest lacks the train or val split; prepare the corpus again")
    return PreparedData(src, trg, tokenizer, src_vocab, trg_vocab, loaded[0], loaded[1], loaded[2:], manifest)
