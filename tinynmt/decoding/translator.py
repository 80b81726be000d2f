"""Text in, text out: tokenize, encode, batch by length, decode, restore the order, detokenize.

    translator = Translator(model, src_vocab, trg_vocab, tokenizer, beam=5, batch_size=128)
    translator.translate(["Ein Mann schläft.", ""])    # ['a man is sleeping .', '']
    Translator(..., beam=5, nbest=3).translations(lines)[0].nbest  # 3 Hypothesis, best first
    tokens, attention = translate_sentence(model, "Ein Mann schläft.", src_vocab, trg_vocab,
                                           tokenizer)  # the tutorial's function

Input policies (the same for the library and the command line):
- A sentence with no tokens (empty or only spaces) translates to "" without running the
  model, so outputs stay line for line with inputs.
- Unknown words become <unk> and the sentence is translated as usual.
- A sentence longer than the encoder's positions (max_length, <sos>/<eos> included) is
  cut to fit; `warn` gets a one-line message saying how many tokens were dropped.

`model` is a Seq2Seq or an Ensemble (ensemble.py); an ensemble takes the positions that
all of its models take.
"""
import warnings
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..autograd import no_grad
from ..backend import to_numpy
from ..data import EOS_IDX, SOS_IDX, Batches
from .incremental import eval_mode, max_positions
from .search import check_max_steps, check_nbest, greedy_search, search


@dataclass
class Hypothesis:
    """One output of beam search for a sentence (an n-best list holds several)."""

    text: str                 # detokenized output
    tokens: List[str]         # output tokens, no <sos>/<eos>
    ids: List[int]            # output ids, no <sos>/<eos>
    score: float              # length-normalised log-probability (-inf: no such hypothesis)
    finished: bool            # the output ended with <eos>


@dataclass
class Translation:
    """One sentence's translation and what the model saw."""

    text: str                 # detokenized output; "" for a sentence without tokens
    tokens: List[str]         # output tokens, no <sos>/<eos>
    src_tokens: List[str]     # source tokens the model saw (after any cut), no <sos>/<eos>
    src_ids: List[int]        # the model's source ids, <sos>/<eos> included
    ids: List[int]            # output ids, no <sos>/<eos>
    score: Optional[float]    # length-normalised log-probability (None when not decoded)
    finished: bool            # the output ended with <eos> (False: cut at max_steps, or empty)
    nbest: List[Hypothesis] = field(default_factory=list)  # the nbest best, best first ([]: not decoded)


def encode_sentence(tokens, vocab, max_positions):
    """A tokenized sentence (a source, or a reference) as ids framed by <sos>/<eos>, cut to
    max_positions -> (ids, kept tokens, n dropped)."""
    room = max_positions - 2
    dropped = max(0, len(tokens) - room)
    kept = list(tokens[:room]) if dropped else list(tokens)
    return [SOS_IDX, *vocab.encode(kept), EOS_IDX], kept, dropped


class Translator:
    """Translate lists of sentences with a model (or an Ensemble): greedy (beam 1) or beam
    search, keeping the nbest best outputs of each."""

    def __init__(self, model, src_vocab, trg_vocab, tokenizer, beam=1, lenpen=1.0, max_steps=50,
                 batch_size=128, warn: Optional[Callable[[str], None]] = None, nbest=1):
        """max_steps: the most output tokens of a sentence, <eos> included."""
        for name, value in (("beam", beam), ("batch_size", batch_size), ("max_steps", max_steps)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        check_nbest(int(beam), int(nbest))
        check_max_steps(model, int(max_steps))
        self.model, self.src_vocab, self.trg_vocab, self.tokenizer = model, src_vocab, trg_vocab, tokenizer
        self.beam, self.lenpen, self.max_steps, self.batch_size = int(beam), float(lenpen), int(max_steps), int(batch_size)
        self.nbest = int(nbest)
        self.warn = warn or (lambda message: warnings.warn(message, stacklevel=3))

    def translate(self, sentences: Sequence[str], names: Optional[Sequence[str]] = None) -> List[str]:
        """Detokenized translations, one per sentence, in order."""
        return [t.text for t in self.translations(sentences, names)]

    def translations(self, sentences: Sequence[str], names: Optional[Sequence[str]] = None) -> List[Translation]:
        """Translation records, one per sentence, in order; `names` label warnings ("line 3")."""
        names = names or [f"sentence {i + 1}" for i in range(len(sentences))]
        positions = max_positions(self.model)[0]
        results: List[Optional[Translation]] = [None] * len(sentences)
        todo, todo_ids = [], []
        for i, sentence in enumerate(sentences):
            tokens = self.tokenizer.tokenize(sentence)
            ids, kept, dropped = encode_sentence(tokens, self.src_vocab, positions)
            if dropped:
                self.warn(f"{names[i]}: {len(tokens)} tokens, more than the model's {positions - 2} "
                          f"(max_length {positions} with <sos>/<eos>): dropped the last {dropped}")
            results[i] = Translation("", [], kept, ids, [], None, False)
            if kept:
                todo.append(i)
                todo_ids.append(ids)
        if todo:
            # sorted by length into batches: little padding, and the same batches every time
            for batch in Batches(todo_ids, None, batch_size=self.batch_size):
                hyps = search(self.model, batch.src, beam=self.beam, max_steps=self.max_steps,
                              lenpen=self.lenpen, nbest=self.nbest)
                for row, j in enumerate(batch.index.tolist()):
                    record = results[todo[j]]
                    record.nbest = [self.hypothesis(hyps, row * self.nbest + k) for k in range(self.nbest)]
                    best = record.nbest[0]
                    record.text, record.tokens, record.ids = best.text, best.tokens, best.ids
                    record.score, record.finished = best.score, best.finished
        return results

    def hypothesis(self, hyps, row):
        """Row `row` of search's Hypotheses as text."""
        tokens = self.trg_vocab.decode(hyps.tokens[row])
        return Hypothesis(self.tokenizer.detokenize(tokens), tokens, hyps.tokens[row],
                          float(hyps.scores[row]), bool(hyps.finished[row]))


@no_grad()
def attention_of(model, src_ids, out_ids, finished):
    """Last decoder layer's cross-attention (H, T_out, S) while predicting out_ids (and <eos>
    when finished), by one teacher-forced pass: the numbers the decoding steps computed."""
    trg_in = [SOS_IDX, *out_ids] if finished else [SOS_IDX, *out_ids][:max(1, len(out_ids))]
    with eval_mode(model):
        _, attention = model(np.array([src_ids]), np.array([trg_in]))  # (1, H, T_out, S)
    return to_numpy(attention.data[0])


def translate_sentence(model, sentence, src_vocab, trg_vocab, tokenizer, max_len=50):
    """The tutorial's greedy translate_sentence -> (output tokens without <sos>/<eos>,
    last layer's cross-attention as a NumPy array (H, T_out, S)).

    `sentence` is a string (tokenized here) or a list of tokens (lowercased when the
    tokenizer lowercases, as the tutorial does); max_len, the tutorial's name, is search's
    max_steps: the most output tokens, <eos> included. Row i of the attention is the step that
    predicted output token i; when the output ended with <eos>, one more row predicted
    it (T_out = len(tokens) + 1). Columns are <sos>, the source tokens, <eos>.
    """
    if isinstance(sentence, str):
        tokens = tokenizer.tokenize(sentence)
    else:
        tokens = [t.lower() for t in sentence] if tokenizer.lower else list(sentence)
    ids, _, dropped = encode_sentence(tokens, src_vocab, model.encoder.max_length)
    if dropped:
        warnings.warn(f"the sentence has {len(tokens)} tokens, more than the model takes: "
                      f"dropped the last {dropped}", stacklevel=2)
    hyps = greedy_search(model, np.array([ids]), max_steps=max_len)
    out_ids = hyps.tokens[0]
    attention = attention_of(model, ids, out_ids, bool(hyps.finished[0]))
    return trg_vocab.decode(out_ids), attention
