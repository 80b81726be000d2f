"""Decoding: batched greedy and beam search with cached keys/values, and text translation.

    from tinynmt.decoding import Translator, translate_sentence, greedy_search, beam_search
    hyps = beam_search(model, src_ids, beam=5, max_len=50, lenpen=1.0)   # src_ids (N, S)
    Translator(model, src_vocab, trg_vocab, tokenizer, beam=5).translate(lines)

Modules: incremental (the decoder one position at a time, caches), search (greedy, beam,
the length penalty), translator (text <-> ids, batching, input policies, attention).
"""
from .incremental import IncrementalDecoder, eval_mode
from .search import Hypotheses, beam_search, greedy_search, search
from .translator import Translation, Translator, attention_of, encode_source, translate_sentence

__all__ = ["Hypotheses", "IncrementalDecoder", "Translation", "Translator", "attention_of",
           "beam_search", "encode_source", "eval_mode", "greedy_search", "search",
           "translate_sentence"]
