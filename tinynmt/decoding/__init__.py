"""Decoding: batched greedy and beam search with cached keys/values, ensembles, n-best lists,
scores of given references, and text translation.

    from tinynmt.decoding import Translator, translate_sentence, greedy_search, beam_search
    hyps = beam_search(model, src_ids, beam=5, max_steps=50, lenpen=1.0)   # src_ids (N, S)
    Translator(model, src_vocab, trg_vocab, tokenizer, beam=5).translate(lines)
    beam_search(Ensemble([model_a, model_b]), src_ids, beam=5, nbest=3)  # 3 rows per sentence
    score_references(model, src_lines, ref_lines, src_vocab, trg_vocab, tokenizer)

Modules: cache (the self-attention and cross-attention key/value caches), incremental (the
decoder one position at a time, and the interface search decodes with), ensemble (several
models as one decoder state), search (greedy, beam, the length penalty), translator (text <->
ids, batching, input policies, attention), scoring (teacher-forced log-probs of references),
metrics (BLEU of translations, loss of references).
"""
from .cache import CrossAttentionCache, SelfAttentionCache
from .ensemble import Ensemble, EnsembleDecoder, mean_of_probabilities
from .incremental import IncrementalDecoder, SingleModel, eval_mode, max_positions, members, start_decoding
from .scoring import reference_log_probs, score_references
from .search import Hypotheses, beam_search, greedy_search, search
from .translator import (Hypothesis, Translation, Translator, attention_of, encode_sentence, translate_sentence)

__all__ = ["CrossAttentionCache", "Ensemble", "EnsembleDecoder", "Hypotheses", "Hypothesis", "IncrementalDecoder",
           "SelfAttentionCache", "SingleModel", "Translation", "Translator", "attention_of", "beam_search",
           "encode_sentence", "eval_mode", "greedy_search", "max_positions", "mean_of_probabilities", "members",
           "reference_log_probs", "score_references", "search", "start_decoding", "translate_sentence"]
