"""Decoding: batched greedy and beam search with cached keys/values, ensembles, n-best lists,
scores of given references, and text translation.

    from tinynmt.decoding import Translator, translate_sentence, greedy_search, beam_search
    hyps = beam_search(model, src_ids, beam=5, max_len=50, lenpen=1.0)   # src_ids (N, S)
    Translator(model, src_vocab, trg_vocab, tokenizer, beam=5).translate(lines)
    beam_search(Ensemble([model_a, model_b]), src_ids, beam=5, nbest=3)  # 3 rows per sentence
    score_references(model, src_lines, ref_lines, src_vocab, trg_vocab, tokenizer)

Modules: incremental (the decoder one position at a time, caches), ensemble (several models
as one decoder state), search (greedy, beam, the length penalty), translator (text <-> ids,
batching, input policies, attention), scoring (teacher-forced log-probs of references).
"""
from .ensemble import (Ensemble, EnsembleDecoder, max_positions, mean_of_probabilities, members, start_decoding)
from .incremental import IncrementalDecoder, eval_mode
from .scoring import reference_log_probs, score_references
from .search import Hypotheses, beam_search, greedy_search, search
from .translator import (Hypothesis, Translation, Translator, attention_of, encode_source, translate_sentence)

__all__ = ["Ensemble", "EnsembleDecoder", "Hypotheses", "Hypothesis", "IncrementalDecoder", "Translation",
           "Translator", "attention_of", "beam_search", "encode_source", "eval_mode", "greedy_search",
           "max_positions", "mean_of_probabilities", "members", "reference_log_probs", "score_references",
           "search", "start_decoding", "translate_sentence"]
