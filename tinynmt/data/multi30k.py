"""Multi30k task 1 (raw text): where the files are, and reading them.

    src_lines, trg_lines = read_multi30k("train", "de", "en")   # 29,000 pairs
    path = find_file("val", "fr")                               # downloads if needed

Languages: cs, de, en, fr. Splits: train (29,000), val (1,014), test_2016_flickr (1,000),
test_2017_flickr, test_2017_mscoco, test_2018_flickr (cs has no 2017 test sets).
Files are `{split}.{lang}.gz` from https://github.com/multi30k/dataset (data/task1/raw/).

Each file is looked for, in this order:
1. `data_dir`, when given (files placed by hand, as the tutorial's `.data/` folder):
   `{split}.{lang}` or `{split}.{lang}.gz`, also in `data_dir/multi30k/`, and the old
   torchtext name `test2016.{lang}` for test_2016_flickr. Used as they are, unchecked.
2. The repository's `data/multi30k/` (de and en train/val/test_2016_flickr are carried
   there; absent from a non-editable install).
3. The cache: `$TINYNMT_CACHE/multi30k`, else `$XDG_CACHE_HOME/tinynmt/multi30k`,
   else `~/.cache/tinynmt/multi30k`.
4. Download from `$TINYNMT_MULTI30K_URL` (default: the official repository's raw
   files, BASE_URL) into the cache, unless download=False.

The two sides of a pair always come from the same place: with `data_dir`, a split placed
there for one language and not for the other is a DataError (never one hand-placed side
against the official other side: misaligned pairs, silently).

Files from 2-4 whose SHA-256 is in SHA256 are verified on download and on every read
(a few ms). For the other files no hash was available when this was written: a download
is accepted when it is a complete gzip stream (gzip's own CRC-32 and length check) of
UTF-8 text, and the two sides of a pair must have equal line counts.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import List, Optional, Tuple

from .download import fetch
from .errors import DataError
from .textfile import check_parallel, decode_lines, read_bytes

LANGS = ("cs", "de", "en", "fr")
SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr")
_ABSENT = {("test_2017_flickr", "cs"), ("test_2017_mscoco", "cs")}  # not in the official repository
BASE_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
REPO_DIR = Path(__file__).resolve().parents[2] / "data" / "multi30k"
HOME_PAGE = "https://github.com/multi30k/dataset (data/task1/raw/)"

# SHA-256 of the official files, computed from the copies carried in data/multi30k/.
SHA256 = {
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
}


def check_lang(lang: str) -> None:
    """Raise DataError unless `lang` is a Multi30k language code."""
    if lang not in LANGS:
        raise DataError(f"unknown language code {lang!r}; valid: {', '.join(LANGS)}")


def check_split(split: str, lang: str) -> None:
    """Raise DataError unless Multi30k has `split` for `lang`."""
    check_lang(lang)
    if split not in SPLITS:
        raise DataError(f"unknown Multi30k split {split!r}; valid: {', '.join(SPLITS)}")
    if (split, lang) in _ABSENT:
        have = ", ".join(s for s in SPLITS if (s, lang) not in _ABSENT)
        raise DataError(f"Multi30k has no {split} for {lang}; its splits for {lang}: {have}")


def cache_dir() -> Path:
    """Return the download cache folder (it may not exist yet)."""
    root = os.environ.get("TINYNMT_CACHE")
    if root:
        return Path(root).expanduser() / "multi30k"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "tinynmt" / "multi30k"


def base_url() -> str:
    """Return the download base URL ($TINYNMT_MULTI30K_URL or the official one)."""
    return os.environ.get("TINYNMT_MULTI30K_URL", BASE_URL).rstrip("/")


def _hand_placed(data_dir: Path, split: str, lang: str) -> Optional[Path]:
    """Return a hand-placed file for split/lang under data_dir, if there is one."""
    stems = [f"{split}.{lang}"] + ([f"test2016.{lang}"] if split == "test_2016_flickr" else [])
    for folder in (data_dir, data_dir / "multi30k"):
        for stem in stems:
            for name in (stem, stem + ".gz"):
                if (folder / name).is_file():
                    return folder / name
    return None


def find_file(split: str, lang: str, data_dir=None, download: bool = True, progress: bool = True) -> Tuple[Path, bool]:
    """Locate (or download) one Multi30k file; return (path, whether its hash should be checked)."""
    check_split(split, lang)
    name = f"{split}.{lang}.gz"
    looked = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise DataError(f"data folder {data_dir} does not exist")
        found = _hand_placed(data_dir, split, lang)
        if found is not None:
            return found, False
        looked.append(str(data_dir))
    for folder in (REPO_DIR, cache_dir()):
        if (folder / name).is_file():
            return folder / name, True
        looked.append(str(folder))
    if not download:
        raise DataError(f"Multi30k {name} not found (looked in {', '.join(looked)}) and download is off; "
                        f"get it from {HOME_PAGE} into one of those folders or a folder passed as --data-dir")
    url = f"{base_url()}/{name}"
    path = fetch(url, cache_dir() / name, sha256=SHA256.get(name), progress=progress,
                 check=None if name in SHA256 else _check_gzip_text)
    return path, True


def _check_gzip_text(path: Path) -> None:
    """Accept a downloaded file only if it decompresses fully into non-empty UTF-8 text."""
    if not decode_lines(read_bytes(path), f"download {path.name}"):
        raise DataError(f"download {path.name}: the file is empty")


def read_split(split: str, lang: str, data_dir=None, download: bool = True, progress: bool = True) -> List[str]:
    """Read one side of one Multi30k split as a list of lines."""
    path, verify = find_file(split, lang, data_dir, download, progress)
    raw = read_bytes(path)
    expected = SHA256.get(path.name)
    if verify and expected is not None:
        got = hashlib.sha256(raw).hexdigest()
        if got != expected:
            fix = ("restore it with `git checkout -- data/multi30k`" if path.parent == REPO_DIR
                   else "delete it to download it again")
            raise DataError(f"{path}: checksum mismatch (SHA-256 {got}, expected {expected}); "
                            f"the file is damaged or changed, {fix}")
    return decode_lines(raw, str(path))


def check_same_place(split: str, src: str, trg: str, data_dir=None) -> None:
    """DataError when `data_dir` holds one side of the split but not the other."""
    if data_dir is None or not Path(data_dir).expanduser().is_dir():
        return                                  # find_file says what is wrong with the folder
    placed = {lang: _hand_placed(Path(data_dir).expanduser(), split, lang) for lang in (src, trg)}
    if (placed[src] is None) != (placed[trg] is None):
        have, lack = (src, trg) if placed[src] is not None else (trg, src)
        raise DataError(f"{data_dir} holds {placed[have].name} but no {split}.{lack}[.gz]: both sides of a "
                        f"pair must come from the same place; add {split}.{lack} there, or remove "
                        f"{placed[have].name} to use the official files")


def read_multi30k(split: str, src: str, trg: str, data_dir=None, download: bool = True,
                  progress: bool = True) -> Tuple[List[str], List[str]]:
    """Read one Multi30k split for a language pair as (src_lines, trg_lines)."""
    check_lang(src)
    check_lang(trg)
    if src == trg:
        raise DataError(f"source and target language are both {src!r}; pick two of {', '.join(LANGS)}")
    check_same_place(split, src, trg, data_dir)
    src_lines = read_split(split, src, data_dir, download, progress)
    trg_lines = read_split(split, trg, data_dir, download, progress)
    check_parallel(src_lines, trg_lines, f"{split}.{src}", f"{split}.{trg}")
    return src_lines, trg_lines
