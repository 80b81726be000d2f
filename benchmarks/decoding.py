"""Decoding timings in sentences per second: greedy and beam 5 over test sentences.

tinynmt decodes incrementally (cached keys/values, batches of 128 sorted by length). PyTorch
runs the tutorial's method, batched: the whole decoder again over the prefix at each step,
greedy only (the tutorial has no beam search).
"""
import time

import numpy as np

from tinynmt.data import EOS_IDX, PAD_IDX, SOS_IDX, encode_sentences, pad_sequences
from tinynmt.decoding import Translator

MAX_LEN = 50
BATCH = 128


def decode_timings(engine, runner, data, n_sentences):
    """{'greedy_sent_s': ..., 'beam5_sent_s': ...} for one runner."""
    lines = data.test.src_text[:n_sentences]
    if engine == "tinynmt":
        out = {}
        for beam, key in ((1, "greedy_sent_s"), (5, "beam5_sent_s")):
            translator = Translator(runner.model, data.src_vocab, data.trg_vocab, data.tokenizer,
                                    beam=beam, max_steps=MAX_LEN, batch_size=BATCH)
            start = time.perf_counter()
            translator.translate(lines)
            runner.sync()
            out[key] = len(lines) / (time.perf_counter() - start)
        return out
    ids = encode_sentences(lines, data.src_vocab, tokenizer=data.tokenizer)
    order = np.argsort([len(s) for s in ids], kind="stable")
    start = time.perf_counter()
    for i in range(0, len(order), BATCH):
        torch_greedy(runner, pad_sequences([ids[j] for j in order[i:i + BATCH]]))
    runner.sync()
    return {"greedy_sent_s": len(lines) / (time.perf_counter() - start)}


def torch_greedy(runner, src):
    """Batched greedy decoding, recomputing the decoder over the prefix each step (the tutorial's way)."""
    torch, model = runner.torch, runner.model
    model.eval()
    with torch.no_grad():
        src = torch.from_numpy(src).to(runner.device)                      # (B, S)
        src_mask = model.make_src_mask(src)
        enc_src = model.encoder(src, src_mask)
        trg = torch.full((src.shape[0], 1), SOS_IDX, device=runner.device)  # (B, 1)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=runner.device)
        for _ in range(MAX_LEN):
            output, _ = model.decoder(trg, enc_src, model.make_trg_mask(trg), src_mask)
            next_ids = output[:, -1].argmax(-1).masked_fill(done, PAD_IDX)  # (B,)
            trg = torch.cat([trg, next_ids[:, None]], dim=1)
            done |= next_ids == EOS_IDX
            if bool(done.all()):
                break
    return trg
