"""tinynmt.data: Multi30k (or any parallel corpus), tokenizers, vocabularies, batches.

Text files, Multi30k files (found, downloaded, verified), tokenizers, vocabularies. Every bad input
raises DataError with a one-line message.
"""
from .errors import DataError
from .multi30k import LANGS, SPLITS, read_multi30k
from .textfile import read_lines, read_parallel
from .tokenize import Tokenizer, get_tokenizer, tokenizer_from_dict
from .vocab import EOS_IDX, PAD_IDX, SOS_IDX, SPECIALS, UNK_IDX, Vocab

__all__ = [
    "DataError", "EOS_IDX", "LANGS", "PAD_IDX", "SOS_IDX", "SPECIALS", "SPLITS", "Tokenizer", "UNK_IDX", "Vocab",
    "get_tokenizer", "read_lines", "read_multi30k", "read_parallel", "tokenizer_from_dict",
]
