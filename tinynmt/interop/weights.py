"""Weights to PyTorch (safetensors) and back into a tinynmt checkpoint.

    export_safetensors(checkpoint, "model.safetensors")
    model, config = import_weights("tut6-model.pt", "imported.npz", vocab_from=checkpoint)

Export writes every weight under its PyTorch state_dict name (tinynmt's names are the
tutorial's), tied embeddings as one copy per name (safetensors refuses shared memory), and
the config, vocabularies and tokenizer as metadata, so the file imports back on its own.
Fixed sinusoidal positions go out as the learned table that computes the same
(`pos_embedding.weight`), and come back fixed when both tables are still those sinusoids.
Import reads a `torch.save`d state_dict (weights_only=True) or a safetensors file, takes the
sizes from the tensor shapes and the heads from the arguments, the metadata or the
vocabularies' checkpoint, ties the embeddings again where the copies are bit-identical, and
refuses weights that are not finite. The program and its flags: `python -m tinynmt.export`
(tinynmt/programs/export.py, whose docstring tells the whole story).
"""
import json
import zipfile
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..training.checkpoint import load_checkpoint, save_checkpoint
from ..training.config import Config, ConfigError
from ..data import PAD_IDX, DataError, Vocab, tokenizer_from_dict
from ..nn import build_transformer
from ..nn.layers import sinusoid_table

USAGE_ERROR = 2
FORMAT = "tinynmt.safetensors"
TIED = ("decoder.tok_embedding.weight", "decoder.fc_out.weight", "encoder.tok_embedding.weight")


class ExportError(Exception):
    """A problem to report as one `error: ...` line, exit status 2."""


def safetensors_numpy():
    """The safetensors package's NumPy API, or an ExportError saying how to get it."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ExportError("safetensors files need the safetensors package "
                          "(pip install 'tinynmt[export]')") from None
    return safetensors.numpy


def tied_names(model):
    """The names under which the model holds its one tied embedding matrix ([] if untied)."""
    dec, enc = model.decoder, model.encoder
    if dec.fc_out.weight is not dec.tok_embedding.weight:
        return []
    return list(TIED if enc.tok_embedding.weight is dec.tok_embedding.weight else TIED[:2])


POSITION_TABLES = ("encoder.pos_embedding.weight", "decoder.pos_embedding.weight")


def tutorial_state_dict(model):
    """state_dict() under the tutorial's PyTorch names, fixed sinusoidal positions included: their
    table as `pos_embedding.weight`, the learned table that computes the same."""
    state = model.state_dict()
    for name, side in zip(POSITION_TABLES, (model.encoder, model.decoder)):
        if name not in state:
            state[name] = sinusoid_table(side.pos_embedding.num_embeddings, side.pos_embedding.embedding_dim)
    return state


def positions_of(weights):
    """"sinusoidal" when both position tables are the fixed sinusoids bit for bit (tinynmt's export
    of such a model), else "learned" (the tutorial's, or sinusoids trained further in PyTorch)."""
    fixed = all(np.array_equal(weights[name], sinusoid_table(*weights[name].shape))
                for name in POSITION_TABLES)
    return "sinusoidal" if fixed else "learned"


# ----- export

def export_safetensors(checkpoint, out):
    """Write a checkpoint's weights (one copy per name) and context to a safetensors file."""
    ckpt = load_checkpoint(checkpoint)
    tensors = tutorial_state_dict(ckpt.model)     # a fresh copy per name: tied names share no memory
    check_finite(ckpt.path, tensors)
    metadata = {"format": FORMAT, "version": "1", "config": ckpt.config.to_dict(),
                "src_vocab": ckpt.src_vocab.to_dict(), "trg_vocab": ckpt.trg_vocab.to_dict(),
                "tokenizer": ckpt.tokenizer.to_dict(), "tied": tied_names(ckpt.model)}
    metadata = {key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                for key, value in metadata.items()}
    data = safetensors_numpy().save(tensors, metadata=metadata)
    atomic_write(out, lambda f: f.write(data))
    return ckpt, tensors


# ----- import: reading the file

def read_weights(path):
    """(name -> NumPy array, safetensors metadata or None) from a torch.save or safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(4)
    if is_npz_checkpoint(path):
        raise ExportError(f"{path} is a tinynmt checkpoint already; --from takes a "
                          f"PyTorch state_dict (.pt) or a .safetensors file")
    if head.startswith(b"PK") or head.startswith(b"\x80"):  # torch.save: a zip; before 1.6 a pickle
        return read_torch(path), None
    return read_safetensors(path)


def is_npz_checkpoint(path):
    """Whether the file is a zip holding meta.npy (a tinynmt checkpoint)."""
    try:
        with zipfile.ZipFile(path) as z:
            return "meta.npy" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def read_torch(path):
    """A state_dict saved with torch.save, as float32 NumPy arrays (weights_only=True)."""
    try:
        import torch
    except ImportError:
        raise ExportError(f"{path} was written by torch.save; reading it needs PyTorch "
                          f"(pip install torch), or save it with safetensors.torch.save_file") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:      # torch raises many kinds (UnpicklingError, RuntimeError, ...)
        reason = str(err).strip().split("\n")[0]
        raise ExportError(f"{path}: torch.load(weights_only=True) failed: {reason}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"{path}: not a state_dict (a dict of tensors): save "
                          f"model.state_dict(), not the model")
    return {name: (t.detach().to(torch.float32) if t.is_floating_point() else t.detach()).numpy()
            for name, t in state.items()}


def read_safetensors(path):
    """The tensors of a safetensors file and its metadata (None when it has none)."""
    safetensors_numpy()
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(path, framework="np") as f:
            metadata = f.metadata()
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as err:
        raise ExportError(f"{path}: neither a safetensors file nor a torch.save state_dict "
                          f"({str(err).splitlines()[0]})") from None
    return tensors, metadata


def context_from_metadata(path, metadata):
    """(config, src_vocab, trg_vocab, tokenizer) from tinynmt's safetensors metadata, or None."""
    if not metadata or metadata.get("format") != FORMAT:
        return None
    try:
        fields = {key: json.loads(metadata[key])
                  for key in ("config", "src_vocab", "trg_vocab", "tokenizer")}
        return (Config.from_dict(fields["config"]), Vocab.from_dict(fields["src_vocab"]),
                Vocab.from_dict(fields["trg_vocab"]), tokenizer_from_dict(fields["tokenizer"]))
    except (KeyError, ValueError, DataError) as err:   # JSONDecodeError, ConfigError: ValueErrors
        raise ExportError(f"{path}: bad tinynmt metadata: {err}") from None


# ----- import: sizes, checks, the checkpoint

def shape_of(path, weights, name, ndim=2):
    """The shape of a tensor the sizes are read from; missing or wrong rank is an ExportError."""
    if name not in weights:
        raise ExportError(f"{path}: missing tensor {name} (every tutorial Seq2Seq has it)")
    shape = tuple(weights[name].shape)
    if len(shape) != ndim:
        raise ExportError(f"{path}: tensor {name} has shape {shape}, expected {ndim} dimensions")
    return shape


def sizes_from_shapes(path, weights, heads):
    """Config fields read from the tensors: hid_dim, layers, pf_dim, max_length, layer_norms;
    heads (encoder, decoder) given."""
    sizes = {"enc_heads": heads[0], "dec_heads": heads[1]}
    hid_dim = shape_of(path, weights, "encoder.tok_embedding.weight")[1]
    positions = []
    for side, short in (("encoder", "enc"), ("decoder", "dec")):
        shape_of(path, weights, f"{side}.tok_embedding.weight")    # rows: checked with the vocabulary
        prefix = f"{side}.layers."
        layers = {int(name[len(prefix):].split(".")[0]) for name in weights
                  if name.startswith(prefix) and name[len(prefix):].split(".")[0].isdigit()}
        sizes[f"{short}_layers"] = max(layers) + 1 if layers else 0   # a gap shows up as missing
        sizes[f"{short}_pf_dim"] = shape_of(
            path, weights, f"{prefix}0.positionwise_feedforward.fc_1.weight")[0]
        positions.append(shape_of(path, weights, f"{side}.pos_embedding.weight")[0])
    if positions[0] != positions[1]:
        raise ExportError(f"{path}: the encoder has {positions[0]} positions and the decoder "
                          f"{positions[1]}; tinynmt's config has one max_length")
    # the later notebook's layers have one norm per sublayer instead of the article's one
    layer_norms = "separate" if "encoder.layers.0.ff_layer_norm.weight" in weights else "shared"
    return dict(sizes, hid_dim=hid_dim, max_length=positions[0], layer_norms=layer_norms)


def check_weights(path, weights, expected, config):
    """Exactly the expected names, each a float tensor of the expected shape."""
    missing = [name for name in expected if name not in weights]
    if missing:
        raise ExportError(f"{path}: missing tensor {missing[0]}"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    unexpected = sorted(set(weights) - set(expected))
    if unexpected:
        raise ExportError(f"{path}: unexpected tensor {unexpected[0]} (not part of the tutorial's "
                          f"Seq2Seq)" + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""))
    for name, shape in expected.items():
        if weights[name].dtype.kind != "f":
            raise ExportError(f"{path}: tensor {name} has dtype {weights[name].dtype}, expected floats")
        if tuple(weights[name].shape) != tuple(shape):
            raise ExportError(f"{path}: tensor {name} has shape {tuple(weights[name].shape)}, expected "
                              f"{tuple(shape)} (hid_dim {config.hid_dim}, pf_dim "
                              f"{config.enc_pf_dim}/{config.dec_pf_dim} read from the other tensors)")


def check_finite(path, weights):
    """ExportError naming the first tensor that holds nan or inf: such weights translate nothing."""
    for name, array in weights.items():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ExportError(f"{path}: tensor {name} holds {bad:,} values that are not finite "
                              f"(nan or inf); refusing to write a model that cannot translate")


def tie_from_copies(weights):
    """The names to tie again: those whose copies equal the decoder's embedding bit for bit."""
    dec = weights[TIED[0]]
    tied = [name for name in TIED
            if weights[name].shape == dec.shape and np.array_equal(weights[name], dec)]
    return tied if TIED[1] in tied else []


def check_vocab(path, vocab, weights, name, where):
    """A vocabulary must have one token per row of its embedding."""
    rows = weights[name].shape[0]
    if len(vocab) != rows:
        raise ExportError(f"the {where} has {len(vocab)} tokens but {path}'s {name} has {rows} rows")


def import_weights(path, out, vocab_from=None, heads=None):
    """Write a tinynmt checkpoint at `out` from a PyTorch or safetensors state_dict; return it."""
    weights, metadata = read_weights(path)
    context = context_from_metadata(path, metadata)
    if heads is not None:
        heads = (heads, heads)
    elif context is not None:         # the file's own metadata describes these weights
        heads = (context[0].enc_heads, context[0].dec_heads)
    if vocab_from is not None:
        ckpt = load_checkpoint(vocab_from)
        context = (ckpt.config, ckpt.src_vocab, ckpt.trg_vocab, ckpt.tokenizer)
        where = f"--vocab-from {vocab_from}"
        if heads is None:             # the model the vocabularies were trained with
            heads = (ckpt.config.enc_heads, ckpt.config.dec_heads)
    elif context is None:
        raise ExportError(f"{path} holds no vocabularies: give --vocab-from with the tinynmt "
                          f"checkpoint they come from")
    else:
        where = f"metadata of {path}"
    base, src_vocab, trg_vocab, tokenizer = context
    sizes = sizes_from_shapes(path, weights, heads)
    positions = positions_of(weights)
    if positions == "sinusoidal":     # fixed: rebuilt from the formula, not loaded
        weights = {k: v for k, v in weights.items() if k not in POSITION_TABLES}
    tied = tie_from_copies(weights) if TIED[1] in weights else []
    max_len = base.max_len if base.max_len is None or base.max_len <= sizes["max_length"] else None
    try:
        config = base.replace(**sizes, positions=positions, max_len=max_len, tie_embeddings=bool(tied),
                              share_vocab=len(tied) == 3 if tied else base.share_vocab)
    except ConfigError as err:
        raise ExportError(f"{path}: {err}") from None
    check_vocab(path, src_vocab, weights, "encoder.tok_embedding.weight", f"source vocabulary of {where}")
    check_vocab(path, trg_vocab, weights, "decoder.tok_embedding.weight", f"target vocabulary of {where}")
    model = build_transformer(len(src_vocab), len(trg_vocab), PAD_IDX, PAD_IDX, config, seed=config.seed)
    check_weights(path, weights, {k: v.shape for k, v in model.state_dict().items()}, config)
    check_finite(path, weights)
    model.load_state_dict(weights)
    save_checkpoint(out, model, config, src_vocab, trg_vocab, tokenizer,
                    train_state={"imported_from": str(path)})
    return model, config

