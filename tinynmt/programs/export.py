"""`python -m tinynmt.export`: weights to PyTorch (safetensors) and back into a checkpoint.

    python -m tinynmt.export --checkpoint runs/RUN/best.npz --to model.safetensors
    python -m tinynmt.export --from tut6-model.pt --vocab-from runs/RUN/best.npz --to imported.npz
    python -m tinynmt.export --from model.safetensors --to imported.npz   # vocabularies inside

Export writes every weight under its PyTorch state_dict name (tinynmt's names are the
tutorial's), so in PyTorch
    model.load_state_dict(safetensors.torch.load_file("model.safetensors"), strict=True)
loads it into tinynmt/interop/torch_reference.py's classes. Tied embeddings (one Parameter under
two or three names in tinynmt) are written as one separate copy per name, because
safetensors refuses tensors that share memory: PyTorch loads them untied; the metadata's
"tied" entry lists the names. The metadata (`__metadata__`, JSON strings) also holds the
config, both vocabularies and the tokenizer, so the file imports back on its own. A model with
fixed sinusoidal positions (--positions sinusoidal) writes their table as each side's
`pos_embedding.weight`, the learned table that computes the same.

Import reads a tutorial state_dict saved by `torch.save(model.state_dict(), path)`
(needs PyTorch; loaded with weights_only=True, never unpickling code) or a safetensors
file (no PyTorch needed). Model sizes come from the tensor shapes; heads cannot, so they
are --heads, else the file's metadata, else --vocab-from's config (the model the
vocabularies were trained with, not a guess). The embeddings are tied again where the
copies are bit-identical; the positions stay fixed where both tables are still the
sinusoids bit for bit. Vocabularies come from --vocab-from (a tinynmt checkpoint), else
the file's metadata. Weights that are not finite (nan, inf) are refused both ways. --to is
written atomically (a temporary file moved over it) and may not be a file read. Any
mismatch: `error: ...`, exit status 2; a file that cannot be written: `error: ...`, exit
status 1.
"""
import argparse
import sys


from ..data import DataError
from ..files import OutputError, check_output
from ..interop.weights import USAGE_ERROR, ExportError, export_safetensors, import_weights, tied_names
from ..options import positive
from ..training.checkpoint import CheckpointError
from .cli import OneLineParser, checked, checkpoint_file, flush_stdout, report_error, report_os_error


def build_parser():
    parser = OneLineParser(
        prog="python -m tinynmt.export", description=__doc__.splitlines()[0],
        epilog=__doc__[__doc__.index("Export writes"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH",
                        help="export this tinynmt checkpoint (file, or run folder: its best.npz)")
    source.add_argument("--from", dest="source", metavar="FILE",
                        help="import this PyTorch state_dict (.pt, torch.save) or .safetensors file")
    parser.add_argument("--to", required=True, metavar="FILE",
                        help="where to write: a .safetensors file (export) or a .npz checkpoint (import)")
    parser.add_argument("--vocab-from", metavar="PATH",
                        help="import: the tinynmt checkpoint whose vocabularies and tokenizer to use")
    parser.add_argument("--heads", type=checked(int, positive, "heads"), metavar="N",
                        help="import: attention heads (default: the file's metadata, else "
                             "--vocab-from's config)")
    return parser


def run(args):
    inputs = [("--checkpoint", args.checkpoint), ("--from", args.source), ("--vocab-from", args.vocab_from)]
    check_output(("--to", args.to), [(flag, checkpoint_file(path) if path else None) for flag, path in inputs])
    if args.checkpoint is not None:
        if args.vocab_from is not None or args.heads is not None:
            raise ExportError("--vocab-from and --heads are for importing (--from)")
        ckpt, tensors = export_safetensors(args.checkpoint, args.to)
        tied = tied_names(ckpt.model)
        note = f"; tied {', '.join(tied)} written as separate copies" if tied else ""
        print(f"wrote {args.to}: {len(tensors)} tensors, {ckpt.model.num_parameters():,} "
              f"parameters{note}")
        return 0
    model, config = import_weights(args.source, args.to, args.vocab_from, args.heads)
    print(f"wrote {args.to}: hid_dim {config.hid_dim}, {config.enc_layers}+{config.dec_layers} "
          f"layers, {config.enc_heads}+{config.dec_heads} heads, {model.num_parameters():,} parameters"
          + (", tied embeddings" if config.tie_embeddings else ""))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return flush_stdout(run(args))
    except (ExportError, CheckpointError, DataError, OutputError) as err:
        return report_error(err, USAGE_ERROR)
    except OSError as err:
        return report_os_error(err)


if __name__ == "__main__":
    sys.exit(main())


