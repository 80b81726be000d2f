"""Checkpoints: one self-contained .npz per save, written atomically, read without pickle.

    save_checkpoint("runs/x/last.npz", model, config, src_vocab, trg_vocab, tokenizer,
                    optimizer=optimizer, train_state={"step": 1200, ...})
    ckpt = load_checkpoint("runs/x")          # a run folder means its best.npz
    ckpt.model, ckpt.config, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer
    check_same_vocabularies([ckpt, other])    # before ensembling them: CheckpointError if not

Inside the .npz (a zip of .npy files):
    model/<name>        every weight, under the tutorial's PyTorch state_dict names
    optim/m, optim/v    Adam's flat moment buffers (resumable checkpoints only)
    meta                a one-element string array holding JSON: format, version, config,
                        src_vocab, trg_vocab, tokenizer, optimizer (t, lr, betas, eps,
                        weight_decay) and train_state (epoch, step, RNG state, ...)

A save goes through tinynmt/files.py:atomic_write: a temporary file in the same folder,
flushed and fsynced, then os.replace()d over the old file, and the folder fsynced: a crash at
any moment leaves either the old checkpoint or the new one, never half of one (a symlink is
written through, a folder or device refused). Every problem reading one raises
CheckpointError with a one-line message.
"""
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..backend import xp_for
from ..files import atomic_write
from .config import Config
from ..data import PAD_IDX, DataError, Vocab, tokenizer_from_dict
from ..nn import build_transformer

FORMAT = "tinynmt.checkpoint"
VERSION = 1
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, foreign, or does not fit its config/vocabulary."""


@dataclass
class Checkpoint:
    """What load_checkpoint returns: a ready model (eval mode, on its device) and its context."""

    model: Any                        # tinynmt.nn.Seq2Seq
    config: Config
    src_vocab: Vocab
    trg_vocab: Vocab
    tokenizer: Any                    # tinynmt.data.Tokenizer
    optimizer_state: Optional[dict]   # Adam.state_dict() format (m, v as NumPy), or None
    train_state: Optional[dict]
    path: Path


def save_checkpoint(path, model, config, src_vocab, trg_vocab, tokenizer, optimizer=None,
                    train_state=None):
    """Write weights (+ Adam's moments when given) and JSON metadata to one .npz, atomically."""
    arrays = {f"model/{name}": array for name, array in model.state_dict().items()}
    optimizer_meta = None
    if optimizer is not None:
        state = optimizer.state_dict()
        arrays["optim/m"], arrays["optim/v"] = state.pop("m"), state.pop("v")
        optimizer_meta = state
    meta = {"format": FORMAT, "version": VERSION, "config": config.to_dict(),
            "src_vocab": src_vocab.to_dict(), "trg_vocab": trg_vocab.to_dict(),
            "tokenizer": tokenizer.to_dict(), "optimizer": optimizer_meta,
            "train_state": train_state}
    arrays["meta"] = np.array([json.dumps(meta, ensure_ascii=False)])
    atomic_write(path, lambda f: np.savez(f, **arrays))


def resolve_checkpoint(path, name="best.npz"):
    """A file is used as it is; a run folder means its `name` (best.npz)."""
    path = Path(path).expanduser()
    if path.is_dir():
        if not (path / name).is_file():
            raise CheckpointError(f"{path} holds no {name}: not a run folder, or no checkpoint saved yet")
        return path / name
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run folder")
    return path


def read_arrays(path, only_meta=False):
    """The arrays in the .npz (only "meta" if asked) and its parsed meta, or a CheckpointError."""
    path = resolve_checkpoint(path)
    try:
        with open(path, "rb") as f:          # ours to close, also when np.load fails half-way
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise CheckpointError(f"{path}: not a tinynmt checkpoint (a single .npy array)")
            with npz:
                keys = [k for k in npz.files if k == "meta" or not only_meta]
                arrays = {key: npz[key] for key in keys}
    except _READ_ERRORS as err:
        reason = str(err).split(". ")[0]
        if "pickled" in reason:
            reason = "it holds pickled data, which is never loaded"
        raise CheckpointError(f"{path}: not a readable .npz checkpoint, truncated or corrupt? "
                              f"({type(err).__name__}: {reason})") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{path}: not a tinynmt checkpoint (no meta record)")
    try:
        meta = json.loads(str(arrays.pop("meta").reshape(-1)[0]))
    except (ValueError, IndexError) as err:
        raise CheckpointError(f"{path}: the meta record is not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tinynmt checkpoint (meta format is not {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')!r}; "
                              f"this tinynmt reads version {VERSION}")
    return arrays, meta


def read_config(path):
    """Only the Config stored in a checkpoint (for --resume, before the data is loaded)."""
    path = resolve_checkpoint(path)
    return _parse_context(read_arrays(path, only_meta=True)[1], path)[0]


def _parse_context(meta, path):
    """(config, src_vocab, trg_vocab, tokenizer) from meta, as CheckpointErrors."""
    try:
        config = Config.from_dict(meta.get("config"))
        vocabs = [Vocab.from_dict(meta.get(side)) for side in ("src_vocab", "trg_vocab")]
        tokenizer = tokenizer_from_dict(meta.get("tokenizer"))
    except (ValueError, DataError) as err:  # ConfigError is a ValueError
        raise CheckpointError(f"{path}: bad metadata: {err}") from None
    return (config, *vocabs, tokenizer)


def _check_weights(path, weights, expected, vocab_note):
    """Every expected tensor present, float, and of the model's shape; nothing extra."""
    for name, shape in expected.items():
        if name not in weights:
            raise CheckpointError(f"{path}: the checkpoint lacks tensor {name}")
        got = weights[name]
        if got.dtype.kind != "f":
            raise CheckpointError(f"{path}: tensor {name} has dtype {got.dtype}, expected floats")
        if tuple(got.shape) != tuple(shape):
            raise CheckpointError(f"{path}: tensor {name} has shape {tuple(got.shape)} in the "
                                  f"checkpoint but {tuple(shape)} for its config and {vocab_note}")
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected tensor {extra[0]} (not part of this model)")


def load_checkpoint(path, device="cpu") -> Checkpoint:
    """Rebuild the model (eval mode, on `device`) and everything saved with it."""
    xp_for(device)  # a missing CuPy fails before any work (BackendError)
    path = resolve_checkpoint(path)
    arrays, meta = read_arrays(path)
    config, src_vocab, trg_vocab, tokenizer = _parse_context(meta, path)
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, config, seed=config.seed)
    weights = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    expected = {name: array.shape for name, array in model.state_dict().items()}
    note = f"vocabularies ({len(src_vocab)} source, {len(trg_vocab)} target tokens)"
    _check_weights(path, weights, expected, note)
    model.load_state_dict(weights)
    model.to(device).eval()
    return Checkpoint(model, config, src_vocab, trg_vocab, tokenizer,
                      _optimizer_state(path, meta, arrays, model), meta.get("train_state"), path)


def _optimizer_state(path, meta, arrays, model) -> Optional[Dict[str, Any]]:
    """Adam's state_dict() from the meta scalars and the moment arrays, checked against the model."""
    scalars = meta.get("optimizer")
    if scalars is None:
        return None
    if "optim/m" not in arrays or "optim/v" not in arrays or not isinstance(scalars, dict):
        raise CheckpointError(f"{path}: optimizer state is incomplete (moments or scalars missing)")
    size = model.num_parameters()
    for key in ("optim/m", "optim/v"):
        if arrays[key].shape != (size,):
            raise CheckpointError(f"{path}: tensor {key} has shape {arrays[key].shape} in the "
                                  f"checkpoint but the model has {size} parameters")
    return dict(scalars, m=arrays["optim/m"], v=arrays["optim/v"])


def _vocab_difference(a, b):
    """How two vocabularies differ, in a few words."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} tokens"
    i = next(i for i, (x, y) in enumerate(zip(a.itos, b.itos)) if x != y)
    return f"token {i} is {a.itos[i]!r} vs {b.itos[i]!r}"


def check_same_vocabularies(checkpoints):
    """A CheckpointError naming the first two checkpoints whose source vocabulary, target
    vocabulary or tokenizer (BPE merges included) differ: an ensemble's models must read and
    write the same tokens."""
    first = checkpoints[0]
    for other in checkpoints[1:]:
        for what, a, b in (("source vocabularies", first.src_vocab, other.src_vocab),
                           ("target vocabularies", first.trg_vocab, other.trg_vocab),
                           ("tokenizers", first.tokenizer, other.tokenizer)):
            if a != b:
                how = (_vocab_difference(a, b) if what != "tokenizers"
                       else f"{a!r} vs {b!r}" if repr(a) != repr(b) else "different BPE merges")
                raise CheckpointError(f"{first.path} and {other.path} have different {what} ({how}); "
                                      f"an ensemble needs the same ones")
