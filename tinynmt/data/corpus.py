"""Reading a parallel corpus once, streaming: each file becomes arrays of chunk ids.

    table = ChunkTable(get_tokenizer("unicode", lower=False))
    side = read_side(find_side("corpus/train", "xx-a"), table)   # corpus/train.xx-a[.gz]
    side.n_lines, side.invalid, side.lines_text (with keep_text=True)
    for ids, n_chunks in side.blocks: ...     # (C,) uint32 chunk ids, (L,) int32 chunks per line

A "chunk" is a run of non-space characters (str.split()). Each distinct chunk is numbered
once in a ChunkTable, so a line is stored as a few uint32 ids and the tokenizer's regular
expression and BPE run once per distinct chunk instead of once per line (tokenizing the
chunks of a line gives the line's tokens; the rare lines where it would not, see
LINE_MODE_CHARS, are stored whole as one chunk). Files are read in blocks of BLOCK_BYTES,
plain or gzipped (by their first bytes), hashed (SHA-256 of the bytes on disk) on the way.

Lines end at "\\n" (a "\\r" before it is removed), a UTF-8 byte-order mark at the start is
dropped, as tinynmt.data.textfile does. A line that is not valid UTF-8 is kept as an
invalid line (its pair is dropped later and counted); a NUL byte means the file is not
text, and a file where most lines are not UTF-8 is not UTF-8 text: both are DataErrors.
"""
from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from .errors import DataError
from .textfile import GZIP_MAGIC
from .tokenize import Tokenizer

BLOCK_BYTES = 1 << 20          # 1 MiB of text per block (~8,000 lines): its Python strings stay small
SHOW_INVALID = 5               # invalid lines named (file:line) in messages and the manifest
_LABEL = re.compile(r"[\w-]+")  # a language label: letters, digits, "_" and "-"
# Tokenizing a line chunk by chunk equals tokenizing it whole unless it holds a character that
# str.split() treats as a space but the tokenizer's regex does not (U+001C-U+001F), or a
# grapheme "Prepend" character, which joins the next character (a space too) into one token.
# Those characters (tests/test_prepare.py checks the list against the regex module's Unicode data):
LINE_MODE_CHARS = ("\x1c\x1d\x1e\x1f\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2"
                   "\u0d4e\U000110bd\U000110cd\U000111c2\U000111c3\U000113d1\U0001193f\U00011941\U00011a84"
                   "\U00011a85\U00011a86\U00011a87\U00011a88\U00011a89\U00011d46\U00011f02")
WHOLE_LINE = "\n"              # prefix of a table key that is a whole line (chunks hold no "\n")
LINE_END = "\0"                # the key that ends a line while a block is split (text has no NUL)


def check_label(label: str) -> None:
    """Raise DataError unless `label` is a usable language label (letters, digits, -, _)."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise DataError(f"language label {label!r} must be letters, digits, '-' or '_' (e.g. de, en, xx-a)")


def find_side(prefix, lang: str) -> Path:
    """The file PREFIX.lang, or else PREFIX.lang.gz; a DataError naming both when neither exists."""
    check_label(lang)
    plain = Path(f"{prefix}.{lang}").expanduser()
    packed = plain.with_name(plain.name + ".gz")
    for path in (plain, packed):
        if path.is_file():
            return path
    if plain.is_dir():
        raise DataError(f"{plain} is a folder, expected a text file")
    raise DataError(f"{plain}: no such file (nor {packed.name}); a corpus is PREFIX.{lang} and "
                    f"PREFIX.<other language>, one sentence per line")


class ChunkTable:
    """Every distinct chunk of text seen, numbered from 0 in order of appearance."""

    def __init__(self, tokenizer: Tokenizer):
        self.lower = tokenizer.lower
        # a missing key gets the next number: the lookup runs in C (map(ids.__getitem__, ...))
        self.ids = defaultdict(itertools.count().__next__)
        self.ids[LINE_END]                                   # id 0, never stored
        # whitespace tokens are the chunks themselves; otherwise a regex splits each chunk
        self.whole_lines = tokenizer.name != "whitespace"

    def __len__(self) -> int:
        return len(self.ids)

    def keys(self) -> List[str]:
        """The chunks in id order (key 0 is LINE_END, which no line holds)."""
        return list(self.ids)

    def encode(self, text: str) -> Tuple[np.ndarray, np.ndarray]:
        """Whole lines, each ending in "\\n" -> ((C,) uint32 chunk ids, (L,) int32 chunks per line)."""
        if self.lower:
            text = text.lower()     # as line by line: "\\n" is neither cased nor case-ignorable
        getitem = self.ids.__getitem__
        if self.whole_lines and any(c in text for c in LINE_MODE_CHARS):     # rare: line by line
            chunks = [[WHOLE_LINE + line] if any(c in line for c in LINE_MODE_CHARS) else line.split()
                      for line in text.split("\n")[:-1]]
            n_chunks = np.fromiter(map(len, chunks), dtype=np.int32, count=len(chunks))
            words = itertools.chain.from_iterable(chunks)
            return np.fromiter(map(getitem, words), dtype=np.uint32, count=int(n_chunks.sum())), n_chunks
        # one split for the whole block, a LINE_END key after each line: all of it runs in C
        words = text.replace("\n", f" {LINE_END} ").split()
        ids = np.fromiter(map(getitem, words), dtype=np.uint32, count=len(words))
        ends = ids == 0
        n_chunks = (np.diff(np.flatnonzero(ends), prepend=-1) - 1).astype(np.int32)
        return ids[~ends], n_chunks


def key_text(key: str) -> str:
    """The text a table key stands for (a whole line loses its marker)."""
    return key[len(WHOLE_LINE):] if key.startswith(WHOLE_LINE) else key


@dataclass
class FileInfo:
    """A source file as the manifest records it."""

    path: str                 # as given (messages); the manifest records it absolute
    bytes: int
    sha256: str
    lines: int = 0

    def to_dict(self):
        return {"path": os.path.abspath(self.path), "bytes": self.bytes, "sha256": self.sha256, "lines": self.lines}


@dataclass
class SideText:
    """One file of a split read into chunk ids, block by block."""

    file: FileInfo
    blocks: List[Tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (ids, n_chunks)
    invalid: List[int] = field(default_factory=list)    # 0-based numbers of non-UTF-8 lines
    lines_text: Optional[List[str]] = None              # the raw lines ("" for invalid ones)

    @property
    def n_lines(self) -> int:
        return self.file.lines

    def invalid_mask(self) -> np.ndarray:
        """(L,) bool: True on the lines that are not valid UTF-8."""
        mask = np.zeros(self.n_lines, dtype=bool)
        mask[self.invalid] = True
        return mask

    def where(self, line: int) -> str:
        """file:line (1-based) of a 0-based line number."""
        return f"{self.file.path}:{line + 1}"


class _HashingReader:
    """A binary file object that feeds every byte read through SHA-256."""

    def __init__(self, raw):
        self.raw, self.sha256, self.n_bytes = raw, hashlib.sha256(), 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.sha256.update(data)
        self.n_bytes += len(data)
        return data

    def drain(self):
        """Hash what is left unread (after a --limit)."""
        while self.read(BLOCK_BYTES):
            pass


def _decode_block(body: bytes, first_line: int, name: str, invalid: List[int]) -> str:
    """Bytes of whole lines -> their text, "\\r" ends removed; a line that is not UTF-8 becomes ""
    and is listed."""
    nul = body.find(b"\x00")
    if nul >= 0:
        line = first_line + body.count(b"\n", 0, nul) + 1
        raise DataError(f"{name}: not a text file (a NUL byte on line {line}); expected UTF-8 text, "
                        f"one sentence per line")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        lines = []
        for i, raw in enumerate(body.split(b"\n")):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                invalid.append(first_line + i)
                lines.append("")
        text = "\n".join(lines)
    return text.replace("\r\n", "\n") if "\r" in text else text


def _text_blocks(stream, name: str, invalid: List[int], limit: Optional[int]) -> Iterator[Tuple[str, int]]:
    """Yield (text of whole lines, number of lines) of a binary stream in blocks of about
    BLOCK_BYTES, at most `limit` lines in all."""
    carry, first_line, at_start = b"", 0, True
    while limit is None or first_line < limit:
        data = stream.read(BLOCK_BYTES)
        buf = carry + data
        if at_start and buf.startswith(b"\xef\xbb\xbf"):
            buf = buf[3:]
        at_start = False
        if not data:          # end of file: a last line without "\n" is still a line
            if not buf:
                return
            buf += b"\n"
        cut = buf.rfind(b"\n") + 1
        body, carry = buf[:cut], buf[cut:]
        if not body:
            continue
        text = _decode_block(body, first_line, name, invalid)
        n_lines = text.count("\n")
        if limit is not None and first_line + n_lines > limit:
            n_lines = limit - first_line
            text = "".join(line + "\n" for line in text.split("\n", n_lines)[:n_lines])
        first_line += n_lines
        yield text, n_lines
        if not data:
            return


def read_side(path, table: ChunkTable, keep_text: bool = False, limit: Optional[int] = None) -> SideText:
    """Read one file of a corpus into chunk ids (see the module docstring)."""
    path = Path(path)
    try:
        size = os.path.getsize(path)
        raw = open(path, "rb")
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    name = str(path)
    with raw:
        hashing = _HashingReader(raw)
        magic = raw.peek(2)[:2]
        stream = gzip.GzipFile(fileobj=hashing, mode="rb") if magic == GZIP_MAGIC else hashing
        side = SideText(FileInfo(name, size, ""), lines_text=[] if keep_text else None)
        try:
            for text, n_lines in _text_blocks(stream, name, side.invalid, limit):
                if keep_text:
                    side.lines_text.extend(text.split("\n")[:-1])
                side.blocks.append(table.encode(text))
                side.file.lines += n_lines
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{name}: damaged gzip file ({err})") from None
        hashing.drain()
    side.invalid = [i for i in side.invalid if i < side.n_lines]   # a --limit cut the block
    side.file.sha256 = hashing.sha256.hexdigest()
    if side.n_lines == 0:
        raise DataError(f"{name}: the file is empty; every split needs sentences")
    if len(side.invalid) * 2 > side.n_lines:
        raise DataError(f"{name}: not UTF-8 text ({len(side.invalid)} of {side.n_lines} lines are not "
                        f"valid UTF-8, the first is line {side.invalid[0] + 1}); convert it with iconv")
    return side
