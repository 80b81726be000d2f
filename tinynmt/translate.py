"""Translate sentences with a trained checkpoint.

    python -m tinynmt.translate --checkpoint runs/RUN "Ein Mann schläft." "Zwei Hunde."
    python -m tinynmt.translate --checkpoint runs/RUN                  # stdin, line by line
    python -m tinynmt.translate --checkpoint runs/RUN/best.npz --input test.de --output hyp.en --beam 5
    python -m tinynmt.translate --checkpoint runs/RUN "Ein Hund rennt." --attention att.png

--checkpoint is a checkpoint file, or a run folder (its best.npz is used). With sentences
as arguments, each is translated; with --input FILE (or --input - for all of stdin), the
file is translated in batches; with neither, stdin is answered line by line as each
line arrives (output flushed after each line, like fairseq-interactive).

Output: one detokenized line per input line, always, to stdout or --output FILE.
Bad input:
- an empty (or blank) line gives an empty output line;
- a line of only unknown words is translated (they are <unk> to the model);
- a line longer than the model's source positions is cut to fit, with a warning on
  stderr naming the line and how many tokens were dropped;
- a line that is not valid UTF-8 gives an empty output line and a warning naming it;
  the other lines are still translated;
- a checkpoint that is missing or does not load: `error: ...` on stderr, exit status 2.
"""
import argparse
import sys

from .backend import DEVICES, BackendError
from .cli import OneLineParser, report_error
from .data import DataError
from .speed import keep_freed_memory

DEFAULT_MAX_LEN = 50  # the tutorial's translate_sentence


class CLIError(Exception):
    """A problem to report as one `error: ...` line, exit status 2."""


def warn(message):
    """One warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def decode_line(raw, name):
    """Bytes of one line (no newline) -> str, or "" with a warning when it is not UTF-8."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        warn(f"{name}: not valid UTF-8 (byte 0x{raw[err.start:err.start + 1].hex()} at byte "
             f"{err.start + 1}); its output line is left empty")
        return ""


def split_lines(data, source):
    """File bytes -> decoded lines and their names for warnings ("test.de line 3")."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte-order mark
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()  # the final newline ends the last line
    names = [f"{source} line {i + 1}" for i in range(len(raw_lines))]
    return [decode_line(raw, name) for raw, name in zip(raw_lines, names)], names


def read_input(path):
    """All lines of a file (or stdin for "-") as (lines, names)."""
    if path == "-":
        return split_lines(sys.stdin.buffer.read(), "<stdin>")
    try:
        with open(path, "rb") as f:
            return split_lines(f.read(), path)
    except OSError as err:
        raise CLIError(f"cannot read --input {path}: {err.strerror or err}") from None


def load(path, device):
    """Load a checkpoint, turning every failure into a CLIError."""
    from .checkpoint import CheckpointError, load_checkpoint
    try:
        return load_checkpoint(path, device=device)
    except (CheckpointError, BackendError, DataError) as err:
        raise CLIError(str(err)) from None


def build_parser():
    parser = OneLineParser(
        prog="python -m tinynmt.translate", description=__doc__.splitlines()[0],
        epilog=__doc__[__doc__.index("Output:"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences to translate")
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="checkpoint file, or run folder (uses its best.npz)")
    parser.add_argument("--input", metavar="FILE", help="translate this file (- for all of stdin), in batches")
    parser.add_argument("--output", metavar="FILE", help="write translations here (default: stdout)")
    add_decoding_options(parser)
    parser.add_argument("--attention", metavar="FILE.png",
                        help="draw the first sentence's last-layer cross-attention, one panel per head")
    return parser


def add_decoding_options(parser):
    """--beam, --lenpen, --max-len, --batch-size, --device (shared with tinynmt.evaluate)."""
    parser.add_argument("--beam", type=int, default=1, metavar="N", help="beam size; 1 is greedy search (default: 1)")
    parser.add_argument("--lenpen", type=float, default=1.0, metavar="A",
                        help="length penalty: a hypothesis scores sum(log p) / length**A, <eos> counted "
                             "(default: 1.0, the mean per token; 0: raw log-probability)")
    parser.add_argument("--max-len", type=int, default=None, metavar="N",
                        help="most tokens to generate per sentence, <eos> included (default: 50, "
                             "or the model's target positions if fewer)")
    parser.add_argument("--batch-size", type=int, default=128, metavar="N", help="sentences per batch (default: 128)")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="cpu (NumPy) or cuda (CuPy) (default: cpu)")


def check_decoding_options(args, model):
    """Range checks that need the model (one-line CLIErrors); fills in the default --max-len."""
    if args.max_len is None:
        args.max_len = min(DEFAULT_MAX_LEN, model.decoder.max_length)
    for name in ("beam", "max_len", "batch_size"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.max_len > model.decoder.max_length:
        raise CLIError(f"--max-len {args.max_len} is more than the model's {model.decoder.max_length} target positions")


def draw_attention(translator, record, path):
    """Write the attention figure of one translated sentence."""
    from .attention_plot import plot_attention
    from .decoding import attention_of
    if not record.src_tokens:
        warn(f"no attention drawn to {path}: the first sentence has no tokens")
        return
    attention = attention_of(translator.model, record.src_ids, record.ids, record.finished)
    rows = record.tokens + (["<eos>"] if record.finished else [])
    try:
        plot_attention(record.src_tokens, rows, attention, path)
    except (OSError, RuntimeError) as err:
        raise CLIError(f"cannot write --attention {path}: {err}") from None


def open_output(path):
    """A binary stream for the translations."""
    if path is None:
        return sys.stdout.buffer
    try:
        return open(path, "wb")
    except OSError as err:
        raise CLIError(f"cannot write --output {path}: {err.strerror or err}") from None


def run(args):
    from .decoding import Translator
    checkpoint = load(args.checkpoint, args.device)
    check_decoding_options(args, checkpoint.model)
    translator = Translator(checkpoint.model, checkpoint.src_vocab, checkpoint.trg_vocab, checkpoint.tokenizer,
                            beam=args.beam, lenpen=args.lenpen, max_len=args.max_len,
                            batch_size=args.batch_size, warn=warn)
    if args.sentences and args.input:
        raise CLIError("give sentences as arguments or --input FILE, not both")
    out = open_output(args.output)
    try:
        if args.sentences or args.input:
            if args.sentences:
                lines, names = args.sentences, [f"argument {i + 1}" for i in range(len(args.sentences))]
            else:
                lines, names = read_input(args.input)
            records = translator.translations(lines, names)
            out.write("".join(r.text + "\n" for r in records).encode("utf-8"))
            out.flush()
            if args.attention and records:
                draw_attention(translator, records[0], args.attention)
            return 0
        for number, raw in enumerate(iter(sys.stdin.buffer.readline, b""), start=1):
            name = f"<stdin> line {number}"
            line = decode_line(raw[:-1] if raw.endswith(b"\n") else raw, name)
            record = translator.translations([line], [name])[0]
            out.write((record.text + "\n").encode("utf-8"))
            out.flush()
            if args.attention and number == 1:
                draw_attention(translator, record, args.attention)
        return 0
    finally:
        if out is not sys.stdout.buffer:
            out.close()


def main(argv=None):
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    try:
        return run(args)
    except CLIError as err:
        return report_error(err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
