"""Write tests/golden/tiny_transformer.npz: what the tutorial's PyTorch model computes for fixed
weights and batches, so that tests/test_golden_parity.py checks tinynmt without PyTorch.

    python tests/golden/make_golden.py            # needs PyTorch; uses this checkout's tinynmt

The weights are tinynmt's seeded initialisation of a tiny model, copied into the PyTorch
classes of tinynmt/interop/torch_reference.py. The file holds (float32 unless said):
    config                JSON: sizes, pad id, optimizer settings, clip
    made_with             JSON: the torch and numpy versions (not compared on regeneration)
    weights/<name>        every parameter, under the state_dict names
    src, trg              one padded batch, int64 (B, S) and (B, T)
    logits, attention     PyTorch's forward of src, trg[:, :-1]: (B, T-1, V), (B, H, T-1, S)
    loss, loss_smoothed   CrossEntropyLoss(ignore_index=pad), and with label_smoothing
    grads/<name>          every parameter's gradient of `loss`
    adam/src, adam/trg    five batches, (steps, B, S) and (steps, B, T)
    adam/norms, adam/losses   per step: the gradient norm before clipping, the loss
    adam/<name>           every parameter after five Adam + clip_grad_norm_ steps
Legend: B batch, S source length, T target length, V vocabulary, H heads.
"""
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))        # this checkout's tinynmt, not an installed one

GOLDEN = Path(__file__).with_name("tiny_transformer.npz")
CONFIG = dict(src_vocab=13, trg_vocab=11, pad=1, hid_dim=16, n_layers=2, n_heads=2, pf_dim=32,
              max_length=12, seed=0, label_smoothing=0.1, lr=1e-2, betas=[0.9, 0.98], eps=1e-9,
              clip=0.1, steps=5)


def tinynmt_model(config):
    """tinynmt's tiny model with the seeded initialisation (dropout 0)."""
    from tinynmt.nn import ModelConfig, build_transformer
    c = config
    return build_transformer(c["src_vocab"], c["trg_vocab"], c["pad"], c["pad"], ModelConfig(
        hid_dim=c["hid_dim"], enc_layers=c["n_layers"], dec_layers=c["n_layers"], enc_heads=c["n_heads"],
        dec_heads=c["n_heads"], enc_pf_dim=c["pf_dim"], dec_pf_dim=c["pf_dim"], enc_dropout=0.0,
        dec_dropout=0.0, max_length=c["max_length"]), seed=c["seed"])


def padded_batch(config, seed):
    """src (3, 7), trg (3, 6): padding in both, one full-length row each."""
    rng = np.random.default_rng(seed)
    src = rng.integers(2, config["src_vocab"], (3, 7))
    src[0, 4:] = src[2, 6:] = config["pad"]
    trg = rng.integers(2, config["trg_vocab"], (3, 6))
    trg[1, 3:] = trg[2, 5:] = config["pad"]
    return src, trg


def golden_data(config=CONFIG):
    """Every array of the golden file, computed with PyTorch (one thread, deterministic)."""
    import torch
    from tinynmt.interop.torch_reference import build_torch_transformer
    torch.set_num_threads(1)
    c = config
    weights = tinynmt_model(c).state_dict()

    def reference():
        model = build_torch_transformer(c["src_vocab"], c["trg_vocab"], c["pad"], c["pad"],
                                        hid_dim=c["hid_dim"], n_layers=c["n_layers"],
                                        n_heads=c["n_heads"], pf_dim=c["pf_dim"], dropout=0.0,
                                        max_length=c["max_length"])
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
        return model

    def loss_of(model, src, trg, label_smoothing=0.0):
        src, trg = torch.from_numpy(src), torch.from_numpy(trg)
        logits, attention = model(src, trg[:, :-1])                       # (B, T-1, V)
        loss = torch.nn.CrossEntropyLoss(ignore_index=c["pad"], label_smoothing=label_smoothing)(
            logits.reshape(-1, c["trg_vocab"]), trg[:, 1:].reshape(-1))
        return loss, logits, attention

    out = {"config": np.array(json.dumps(c, sort_keys=True)),
           "made_with": np.array(json.dumps({"torch": torch.__version__, "numpy": np.__version__}))}
    out.update({f"weights/{k}": v for k, v in weights.items()})
    model = reference()
    src, trg = padded_batch(c, seed=0)
    out["src"], out["trg"] = src, trg
    loss, logits, attention = loss_of(model, src, trg)
    loss.backward()
    out["logits"], out["attention"] = logits.detach().numpy(), attention.detach().numpy()
    out["loss"] = np.float32(loss.item())
    with torch.no_grad():
        out["loss_smoothed"] = np.float32(loss_of(model, src, trg, c["label_smoothing"])[0].item())
    out.update({f"grads/{k}": p.grad.numpy().copy() for k, p in model.named_parameters()})

    model = reference()
    optimizer = torch.optim.Adam(model.parameters(), lr=c["lr"], betas=tuple(c["betas"]), eps=c["eps"])
    batches = [padded_batch(c, seed=step) for step in range(c["steps"])]
    norms, losses = [], []
    for src, trg in batches:
        optimizer.zero_grad()
        loss, _, _ = loss_of(model, src, trg)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), c["clip"]).item())
        optimizer.step()
        losses.append(loss.item())
    assert min(norms) > c["clip"], f"clipping must be active at every step: norms {norms}"
    out["adam/src"] = np.stack([src for src, _ in batches])                   # (steps, B, S)
    out["adam/trg"] = np.stack([trg for _, trg in batches])                   # (steps, B, T)
    out["adam/norms"], out["adam/losses"] = np.float32(norms), np.float32(losses)
    out.update({f"adam/{k}": p.detach().numpy().copy() for k, p in model.named_parameters()})
    return out


def main():
    data = golden_data()
    np.savez_compressed(GOLDEN, **data)
    print(f"wrote {GOLDEN.relative_to(ROOT)}: {len(data)} arrays, {GOLDEN.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
