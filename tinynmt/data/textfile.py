"""Reading text corpora: one sentence per line, plain or gzipped, strictly UTF-8.

    lines = read_lines("train.de.gz")                 # list[str], newlines removed
    src, trg = read_parallel("train.de", "train.en")  # same length, or DataError

A file is gzipped when its first two bytes are the gzip magic number, whatever its name.
Lines end at "\\n" only (a "\\r" before it is removed); Unicode line separators such as
U+2028 stay inside their line, so line numbers agree with `wc -l` and `sed -n Np`.
A UTF-8 byte-order mark at the start is dropped. Lines are not stripped here: empty and
over-long sentences are the dataset builder's business (see tinynmt.data.dataset).
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import List, Tuple, Union

from .errors import DataError

PathLike = Union[str, "os.PathLike[str]"]
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: PathLike) -> bytes:
    """Return the raw bytes of a file, or raise DataError if it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a text file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def decode_lines(raw: bytes, name: str) -> List[str]:
    """Decompress (if gzipped) and decode bytes into lines; `name` is used in errors."""
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{name}: damaged gzip file ({err}); delete it and fetch it again") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line_no = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        bad = raw[err.start:err.start + 1].hex()
        raise DataError(f"{name}: line {line_no}, byte column {column}: not valid UTF-8 (byte 0x{bad})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    return lines


def read_lines(path: PathLike) -> List[str]:
    """Read a plain or gzipped UTF-8 text file into a list of lines without newlines."""
    return decode_lines(read_bytes(path), str(path))


def check_parallel(src_lines: List[str], trg_lines: List[str], src_name: str, trg_name: str) -> None:
    """Raise DataError unless both sides have the same number of lines."""
    if len(src_lines) != len(trg_lines):
        raise DataError(
            f"parallel files differ in length: {src_name} has {len(src_lines)} lines, "
            f"{trg_name} has {len(trg_lines)}; each line must translate the same line of the other file"
        )


def read_parallel(src_path: PathLike, trg_path: PathLike) -> Tuple[List[str], List[str]]:
    """Read a parallel corpus (two files, line i translates line i) as two lists of lines."""
    src_lines = read_lines(src_path)
    trg_lines = read_lines(trg_path)
    check_parallel(src_lines, trg_lines, str(src_path), str(trg_path))
    return src_lines, trg_lines
