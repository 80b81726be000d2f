"""The PyTorch reference run of the tutorial recipe, on tinynmt's tokens, vocabularies and batches.

    OMP_NUM_THREADS=1 python benchmarks/torch_train.py --out runs/torch-tutorial
    OMP_NUM_THREADS=1 python benchmarks/torch_train.py --seed 2 --out runs/torch-tutorial-seed2

The tutorial's own loop (PyTorch, tinynmt.interop.torch_reference): Adam 5e-4, batches of 64, clip 1,
10 epochs, seed 1234 (or --seed: PyTorch's init and dropout, and the batch order, as
`python -m tinynmt.train --seed N` seeds its own), best valid loss kept. The best weights are saved as a tinynmt checkpoint
(the state_dict keys are the same), so `python -m tinynmt.evaluate --checkpoint
runs/torch-tutorial/best.npz` scores it with exactly the decoder and BLEU used for tinynmt.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinynmt.training.checkpoint import save_checkpoint  # noqa: E402
from tinynmt.training.config import Config  # noqa: E402
from tinynmt.data import PAD_IDX, load_dataset  # noqa: E402
from tinynmt.nn import build_transformer  # noqa: E402
from tinynmt.interop.torch_reference import build_torch_transformer  # noqa: E402


def evaluate(model, batches, criterion):
    """Mean batch loss, no dropout (the tutorial's evaluate())."""
    model.eval()
    losses = []
    with torch.no_grad():
        for b in batches:
            src, trg = torch.from_numpy(b.src), torch.from_numpy(b.trg)
            output, _ = model(src, trg[:, :-1])
            losses.append(criterion(output.reshape(-1, output.shape[-1]), trg[:, 1:].reshape(-1)).item())
    return float(np.mean(losses))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/torch-tutorial")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=Config.seed)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = Config(out=str(out), seed=args.seed)
    torch.manual_seed(config.seed)
    data = load_dataset(progress=False)
    model = build_torch_transformer(len(data.src_vocab), len(data.trg_vocab), PAD_IDX, PAD_IDX)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=PAD_IDX)
    train_batches = data.train.batches(batch_size=config.batch_size, shuffle=True, seed=config.seed)
    best_valid, best_state, log = math.inf, None, []
    for epoch in range(args.epochs):
        start = time.time()
        model.train()
        losses = []
        for b in train_batches.epoch(epoch):
            src, trg = torch.from_numpy(b.src), torch.from_numpy(b.trg)
            output, _ = model(src, trg[:, :-1])
            loss = criterion(output.reshape(-1, output.shape[-1]), trg[:, 1:].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            losses.append(loss.item())
        valid = evaluate(model, data.val.batches(), criterion)
        if valid < best_valid:
            best_valid = valid
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        record = {"epoch": epoch + 1, "seconds": time.time() - start, "train_loss": float(np.mean(losses)),
                  "valid_loss": valid, "valid_ppl": math.exp(valid)}
        log.append(record)
        print(json.dumps(record), flush=True)
    model.load_state_dict(best_state)
    test = evaluate(model, data.test.batches(), criterion)
    print(json.dumps({"best_valid_loss": best_valid, "test_loss": test, "test_ppl": math.exp(test)}), flush=True)
    tiny = build_transformer(len(data.src_vocab), len(data.trg_vocab), PAD_IDX, PAD_IDX, config,
                             seed=config.seed)
    tiny.load_state_dict({k: v.numpy() for k, v in best_state.items()})
    save_checkpoint(out / "best.npz", tiny, config, data.src_vocab, data.trg_vocab, data.tokenizer)
    (out / "log.json").write_text(json.dumps({"epochs": log, "test_loss": test}, indent=1))


if __name__ == "__main__":
    main()
