"""One runner per engine and device: each builds the tutorial model with the same weights and
times a training step, a forward pass, and decoding on the same batches."""
import time

import numpy as np

from tinynmt import no_grad
from tinynmt.backend import Generator, synchronize, xp_for
from tinynmt.nn import CrossEntropyLoss, set_dropout_generator
from tinynmt.training.config import Config
from tinynmt.training.trainer import make_clip, make_optimizer
from tinynmt.training.step import train_step


def median_time(fn, sync, repeats, warmup):
    """Median wall time of fn() after warm-up calls, synchronising the device around each call."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved_median_times(calls, repeats, warmup):
    """{name: median wall time} of each name's (fn, sync) pair, timed in alternating rounds
    (one call of each per round), so a change in the machine's load hits every engine alike."""
    for fn, sync in calls.values():
        for _ in range(warmup):
            fn()
        sync()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (fn, sync) in calls.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}, times


class TinynmtRunner:
    """tinynmt on NumPy ("cpu") or CuPy ("cuda")."""

    def __init__(self, model, device, pad_idx, lr=5e-4, clip=1.0):
        self.name = f"tinynmt-{'numpy' if device == 'cpu' else 'cupy'}"
        self.model = model.to(device)
        set_dropout_generator(self.model, Generator(1234, device))
        self.optimizer = make_optimizer(self.model.parameters(), Config(lr=lr))   # the trainer's
        self.clip_grad_norm = make_clip(self.optimizer)
        self.criterion = CrossEntropyLoss(ignore_index=pad_idx)
        self.clip = clip
        self.xp = xp_for(device)

    def sync(self):
        synchronize(self.xp)

    def train_step(self, batch):
        self.model.train()
        return train_step(self.model, self.criterion, self.optimizer, batch.src, batch.trg, self.clip,
                          clip_grad_norm=self.clip_grad_norm)

    @no_grad()
    def forward(self, batch):
        self.model.eval()
        return self.model(batch.src, batch.trg[:, :-1])


class TorchRunner:
    """The tutorial's PyTorch code (tinynmt.interop.torch_reference) with the same weights."""

    def __init__(self, tinynmt_model, device, pad_idx, lr=5e-4, clip=1.0):
        import torch
        from tinynmt.interop.torch_reference import build_torch_transformer, load_tinynmt_weights
        enc, dec = tinynmt_model.encoder, tinynmt_model.decoder
        self.torch = torch
        self.name = f"torch-{device}"
        self.device = device
        self.model = build_torch_transformer(
            enc.tok_embedding.num_embeddings, dec.tok_embedding.num_embeddings, pad_idx, pad_idx,
            hid_dim=enc.tok_embedding.embedding_dim, n_layers=len(enc.layers),
            n_heads=enc.layers[0].self_attention.n_heads,
            pf_dim=enc.layers[0].positionwise_feedforward.fc_1.out_features,
            dropout=enc.dropout.p, max_length=enc.max_length)
        load_tinynmt_weights(self.model, tinynmt_model)
        self.model.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.criterion = torch.nn.CrossEntropyLoss(ignore_index=pad_idx)
        self.clip = clip

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def tensors(self, batch):
        as_t = lambda a: self.torch.from_numpy(a).to(self.device)  # noqa: E731
        return as_t(batch.src), as_t(batch.trg)

    def train_step(self, batch):
        self.model.train()
        src, trg = self.tensors(batch)
        output, _ = self.model(src, trg[:, :-1])
        loss = self.criterion(output.reshape(-1, output.shape[-1]), trg[:, 1:].reshape(-1))
        self.optimizer.zero_grad()
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        return loss

    def forward(self, batch):
        self.model.eval()
        src, trg = self.tensors(batch)
        with self.torch.no_grad():
            return self.model(src, trg[:, :-1])
