"""Tokenizers: text -> list of tokens, and back to readable text.

    tok = get_tokenizer("whitespace")          # the tutorial's: lowercase, str.split()
    tok = get_tokenizer("unicode", lower=False)
    tokens = tok.tokenize("Ein Mann, 3.5 m groß, trägt ein T-Shirt.")
    # ['Ein', 'Mann', ',', '3.5', 'm', 'groß', ',', 'trägt', 'ein', 'T-Shirt', '.']
    text = tok.detokenize(tokens)              # 'Ein Mann, 3.5 m groß, trägt ein T-Shirt.'
    tok.to_dict()                              # {'name': 'unicode', 'lower': False}
    tok = tokenizer_from_dict(d)               # what a checkpoint stores, back again
    tok = get_tokenizer("bpe", merges=[["e", "n</w>"]])  # subwords: see bpe.py

`whitespace` splits on any whitespace and keeps punctuation glued to words ("bushes.").
`unicode` separates words from punctuation using Unicode classes (`\\p{L}` letters,
`\\p{N}` digits, `\\p{M}` marks); the exact rules are beside `_TOKEN_RE` below. Its
detokenizer puts no space before closing marks (, . ! ? : ; ) ] } and closing quotes) or
after opening ones (( [ { $ # and opening quotes); "%" keeps its space, as Multi30k writes
"50 %"; straight quotes alternate open/close; “ closes a German „ but opens an English
quote. So detokenize(tokenize(s)) == " ".join(s.split()) for typical sentences when
lower=False (99.8% of Multi30k train de, 99.96% of en; the rest are typos like "Bank .").
"""
from __future__ import annotations

from typing import Dict, List

import regex

from .errors import DataError

# A word: letters/digits/marks. Parts join into one token across an inner ' ’ . & / _ -
# or "&amp;" (don't, T-Shirt, S.C.U.B.A, Q&A, Freund/in); numbers across . , : / between
# digits ("3.5", "2,52", "10:30"). A word may start with "-" after a space or a quote
# ("-tassen", "-5", „Open“-Schild), end with "-" before a space or comma (German
# "Limonade- und Bierdosen"), or end with ' after an s ("the welders' mask"). An HTML
# entity left in the text ("&amp;": Multi30k has them) is one token. Anything else is
# one grapheme (\X) per token, so no character is ever dropped but whitespace.
_WORD = r"[\p{L}\p{N}][\p{L}\p{M}\p{N}]*"
_PART = rf"(?:\p{{N}}+(?:[.,:/]\p{{N}}+)+|{_WORD})"
_TOKEN_RE = regex.compile(
    rf"(?:(?<=^|[\s“”\"])-)?{_PART}(?:(?:&amp;|['’.&/_\-]){_PART})*"
    rf"(?:-(?![\p{{L}}\p{{N}}\-])|(?<=[sS])['’](?![\p{{L}}\p{{N}}]))?"
    rf"|&(?:\w+|#\d+);|(?!\s)\X"
)

_NO_SPACE_BEFORE = frozenset(", . ! ? : ; ) ] } … » ” ’ ''".split())
_NO_SPACE_AFTER = frozenset("( [ { $ # ¿ ¡ « „ ‘ ` ``".split())


class Tokenizer:
    """Base class: a named text <-> tokens mapping with optional lowercasing."""

    name = ""

    def __init__(self, lower: bool = True):
        self.lower = bool(lower)

    def tokenize(self, text: str) -> List[str]:
        """Split one sentence into tokens."""
        raise NotImplementedError

    def detokenize(self, tokens: List[str]) -> str:
        """Join tokens back into readable text."""
        raise NotImplementedError

    def to_dict(self) -> Dict[str, object]:
        """Return a JSON-ready description (what a checkpoint stores)."""
        return {"name": self.name, "lower": self.lower}

    @staticmethod
    def from_dict(d: Dict[str, object]) -> "Tokenizer":
        """Rebuild a tokenizer from `to_dict()` output."""
        return tokenizer_from_dict(d)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()

    __hash__ = None  # mutable-looking value object: equality without hashing

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lower={self.lower})"


class WhitespaceTokenizer(Tokenizer):
    """The tutorial's tokenizer: optional lowercase, then str.split() (any whitespace)."""

    name = "whitespace"

    def tokenize(self, text: str) -> List[str]:
        """Split one sentence on whitespace."""
        return (text.lower() if self.lower else text).split()

    def detokenize(self, tokens: List[str]) -> str:
        """Join tokens with single spaces."""
        return " ".join(tokens)


class UnicodeTokenizer(Tokenizer):
    """Word/punctuation tokenizer on Unicode character classes, with a matching detokenizer."""

    name = "unicode"

    def tokenize(self, text: str) -> List[str]:
        """Split one sentence into words, numbers and single punctuation marks."""
        return _TOKEN_RE.findall(text.lower() if self.lower else text)

    def detokenize(self, tokens: List[str]) -> str:
        """Join tokens with spaces except around punctuation that attaches to a neighbour."""
        out: List[str] = []
        glue_next = True  # no space before the first token
        open_straight = {'"': False, "'": False}
        open_low_quote = False  # inside German „...“
        closed_quote = False  # the previous token closed a quote: „Open“-Schild
        for tok in tokens:
            attach_left = tok in _NO_SPACE_BEFORE
            attach_right = tok in _NO_SPACE_AFTER
            if tok in open_straight:  # straight quotes alternate: open, close, open, ...
                attach_left, attach_right = open_straight[tok], not open_straight[tok]
                open_straight[tok] = not open_straight[tok]
            elif tok == "„":
                open_low_quote = True
            elif tok == "“":  # closes German „, opens English “...”
                attach_left, attach_right = open_low_quote, not open_low_quote
                open_low_quote = False
            if closed_quote and len(tok) > 1 and tok[0] == "-":
                attach_left = True
            if out and not (glue_next or attach_left):
                out.append(" ")
            out.append(tok)
            glue_next = attach_right
            closed_quote = tok in ('"', "“", "”") and attach_left and not attach_right
        return "".join(out)


TOKENIZERS = {"whitespace": WhitespaceTokenizer, "unicode": UnicodeTokenizer}
NAMES = ("unicode", "whitespace", "bpe")  # "bpe" lives in bpe.py, which builds on this module


def get_tokenizer(name: str, lower: bool = True, merges=()) -> Tokenizer:
    """Return the tokenizer called `name`; "bpe" takes its merge table (none: characters)."""
    if name == "bpe":
        from .bpe import BPETokenizer  # imported here: bpe.py imports this module
        return BPETokenizer(lower=lower, merges=merges)
    if name not in TOKENIZERS:
        raise DataError(f"unknown tokenizer {name!r}; valid: {', '.join(NAMES)}")
    return TOKENIZERS[name](lower=lower)


def tokenizer_from_dict(d: Dict[str, object]) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.to_dict()` output, checking its fields."""
    if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not isinstance(d.get("lower"), bool):
        raise DataError(f"not a tokenizer description: {d!r}; expected {{'name': str, 'lower': bool}}")
    if d["name"] == "bpe":
        if not isinstance(d.get("merges"), list):
            raise DataError("not a BPE tokenizer description: no 'merges' list")
        return get_tokenizer("bpe", lower=d["lower"], merges=d["merges"])
    return get_tokenizer(d["name"], lower=d["lower"])
