"""What the training-run tests share: a model small enough to train in a second, and
metrics.jsonl read back by kind."""
import json

# 160 pairs / 32 = 5 steps an epoch; every step's loss is logged
TINY = dict(hid_dim=32, enc_layers=1, dec_layers=1, enc_heads=2, dec_heads=2, enc_pf_dim=64,
            dec_pf_dim=64, batch_size=32, limit_train=160, limit_eval=32, epochs=3, log_every=1,
            plot=False, progress=False)


def records(run_dir, kind):
    """The metrics.jsonl records of one kind (step, epoch, test, ...), in order."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]
