"""Vocabulary: token <-> id, with torchtext's special tokens and order.

    vocab = Vocab.build(token_lists, min_freq=2)   # from training sentences only
    vocab.encode(["ein", "mann"])                  # [5, 13]; unknown tokens -> UNK_IDX
    vocab.decode([5, 13])                          # ['ein', 'mann']
    vocab.save("vocab.de.json"); Vocab.load("vocab.de.json")

Ids 0..3 are the specials <unk> <pad> <sos> <eos> (torchtext Field's order), then every
token seen at least `min_freq` times, most frequent first, ties in alphabetical (code
point) order: the same list torchtext's build_vocab makes, so ids are deterministic.
`max_size`, as in torchtext, caps the tokens after the specials (None: no cap). Tokens
equal to a special's string are not counted. JSON files are UTF-8:
{"format": "tinynmt.vocab", "version": 1, "itos": [...]}.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from .errors import DataError

UNK, PAD, SOS, EOS = "<unk>", "<pad>", "<sos>", "<eos>"
SPECIALS = (UNK, PAD, SOS, EOS)
UNK_IDX, PAD_IDX, SOS_IDX, EOS_IDX = 0, 1, 2, 3
_FORMAT = "tinynmt.vocab"


class Vocab:
    """An ordered token list `itos` and its inverse `stoi`; ids 0..3 are the specials."""

    def __init__(self, itos: Sequence[str]):
        itos = list(itos)
        if tuple(itos[:4]) != SPECIALS:
            raise DataError(f"a vocabulary must start with {' '.join(SPECIALS)}, got {itos[:4]}")
        stoi = {tok: i for i, tok in enumerate(itos)}
        if len(stoi) != len(itos):
            dup = next(tok for i, tok in enumerate(itos) if stoi[tok] != i)
            raise DataError(f"vocabulary lists token {dup!r} twice")
        self.itos: List[str] = itos
        self.stoi: Dict[str, int] = stoi

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 2,
              max_size: Optional[int] = None) -> "Vocab":
        """Count tokens and keep those seen >= min_freq times, most frequent first."""
        if min_freq < 1:
            raise DataError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise DataError(f"max_size must be >= 0 or None, got {max_size}")
        counts: Counter = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for special in SPECIALS:
            counts.pop(special, None)
        kept = sorted((tok for tok, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(SPECIALS + tuple(kept))

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    __hash__ = None  # equality by content; a Vocab is not a dict key

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {', '.join(self.itos[:8])}{', ...' if len(self) > 8 else ''})"

    def encode(self, tokens: Sequence[str]) -> List[int]:
        """Map tokens to ids; a token not in the vocabulary becomes UNK_IDX."""
        get = self.stoi.get
        return [get(tok, UNK_IDX) for tok in tokens]

    def decode(self, ids: Iterable[int]) -> List[str]:
        """Map ids back to tokens (specials included); an id out of range is a DataError."""
        itos, n = self.itos, len(self.itos)
        out = []
        for i in ids:
            i = int(i)  # accepts numpy integers from model output
            if not 0 <= i < n:
                raise DataError(f"token id {i} is out of range for a vocabulary of {n}")
            out.append(itos[i])
        return out

    def to_dict(self) -> Dict[str, object]:
        """Return a JSON-ready dict (what a checkpoint stores)."""
        return {"format": _FORMAT, "version": 1, "itos": list(self.itos)}

    @classmethod
    def from_dict(cls, d: Dict[str, object]) -> "Vocab":
        """Rebuild a vocabulary from `to_dict()` output, checking its shape."""
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise DataError("not a tinynmt vocabulary (missing \"format\": \"tinynmt.vocab\")")
        if d.get("version") != 1:
            raise DataError(f"unsupported tinynmt vocabulary version {d.get('version')!r}; this code reads version 1")
        itos = d.get("itos")
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise DataError("tinynmt vocabulary: \"itos\" must be a list of strings")
        return cls(itos)

    def save(self, path) -> None:
        """Write the vocabulary as UTF-8 JSON (one token per line, readable in diffs)."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=0)
        Path(path).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path) -> "Vocab":
        """Read a vocabulary written by `save`."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: no such vocabulary file") from None
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise DataError(f"{path}: not a readable JSON vocabulary ({err})") from None
        try:
            return cls.from_dict(d)
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
