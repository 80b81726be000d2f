"""Translate sentences with a trained checkpoint.

    python -m tinynmt.translate --checkpoint runs/RUN "Ein Mann schläft." "Zwei Hunde."
    python -m tinynmt.translate --checkpoint runs/RUN                  # stdin, line by line
    python -m tinynmt.translate --checkpoint runs/RUN/best.npz --input test.de --output hyp.en --beam 5
    python -m tinynmt.translate --checkpoint runs/RUN "Ein Hund rennt." --attention att.png
    python -m tinynmt.translate --checkpoint runs/A --checkpoint runs/B/best.npz --beam 5 --nbest 3 "Ein Hund rennt."
    python -m tinynmt.translate --checkpoint runs/RUN --score-reference --input test.de --reference test.en
    python -m tinynmt.translate --checkpoint runs/RUN --beam 5 --nbest 3 --explore page.html "Ein Hund rennt."

--checkpoint is a checkpoint file, or a run folder (its best.npz is used). Several, each
after its own --checkpoint, make an ensemble: at each step of greedy or beam search, the
next token's log-probability is the log of the models' mean probability (fairseq's:
logsumexp - log M), each model keeping its own encoder output and caches; their
vocabularies and tokenizers must be the same. With sentences as arguments, each is
translated; with --input FILE (or --input - for all of stdin), the file is translated in
batches; with neither, stdin is answered line by line as each line arrives (output flushed
after each line, like fairseq-interactive). Arguments are always sentences, wherever they
stand ("50 km/h" and "runs/B" too): a checkpoint is named only by --checkpoint. With
--output FILE the translations go to a temporary file beside FILE, moved over it when the
run succeeds: a failed run leaves an existing FILE as it was, and --output (or --attention)
naming an input or a checkpoint is refused before anything runs.

Output: one detokenized line per input line, always, to stdout or --output FILE.
With --nbest N (N <= --beam), fairseq-style lines instead, N+1 per input line i (counted
from 0): `S-i<TAB>source line`, then N lines `H-i<TAB>score<TAB>translation`, best first,
where score is the search's final score: the log-probability of the tokens (<eos> included)
divided by length ** --lenpen (a line without tokens is not translated: score nan, no text).
With --score-reference (--input and --reference FILE, line for line), the model's own
log-probabilities of each reference given its source, by teacher forcing, in nats: one
line per pair, `sum<TAB>mean per token<TAB>each token's, space-separated`, <eos> included
(a pair with an empty side: `nan<TAB>nan<TAB>`); an ensemble's are its mean-probability ones.
Bad input:
- an empty (or blank) line gives an empty output line;
- a line of only unknown words is translated (they are <unk> to the model);
- a line longer than the model's source positions is cut to fit, with a warning on
  stderr naming the line and how many tokens were dropped;
- a line that is not valid UTF-8 gives an empty output line and a warning naming it;
  the other lines are still translated;
- an empty --input file gives no output lines and a warning;
- a checkpoint that is missing or does not load, a flag value out of range (nan, inf, a
  negative count): `error: ...` on stderr, exit status 2; a file that cannot be written
  (a full disk): `error: ...`, exit status 1; a reader that stops reading (`| head -1`):
  a quiet exit, status 0.
"""
import argparse
import sys

from ..backend import DEVICES, BackendError
from .cli import OneLineParser, checked, checkpoint_file, flush_stdout, report_error, report_os_error
from ..files import OutputError, check_output, output_stream
from ..options import positive, within
from ..data import DataError
from .output_lines import nbest_lines, score_line
from ..fast.cpu import keep_freed_memory

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
    from ..training.checkpoint import CheckpointError, load_checkpoint
    try:
        return load_checkpoint(path, device=device)
    except (CheckpointError, BackendError, DataError) as err:
        raise CLIError(str(err)) from None


def load_models(paths, device):
    """Load every checkpoint -> (the Checkpoints, the first's model or an Ensemble of all);
    CLIError unless their vocabularies and tokenizers are the same."""
    from ..training.checkpoint import CheckpointError, check_same_vocabularies
    from ..decoding import Ensemble
    checkpoints = [load(path, device) for path in paths]
    try:
        check_same_vocabularies(checkpoints)
    except CheckpointError as err:
        raise CLIError(str(err)) from None
    models = [c.model for c in checkpoints]
    return checkpoints, models[0] if len(models) == 1 else Ensemble(models)


def build_parser():
    parser = OneLineParser(
        prog="python -m tinynmt.translate", description=__doc__.splitlines()[0],
        epilog=__doc__[__doc__.index("Output:"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sentences", nargs="*", metavar="SENTENCE", help="sentences to translate")
    add_checkpoint_option(parser)
    parser.add_argument("--input", metavar="FILE", help="translate this file (- for all of stdin), in batches")
    parser.add_argument("--output", metavar="FILE", help="write translations here (default: stdout)")
    add_decoding_options(parser)
    parser.add_argument("--nbest", type=checked(int, positive, "nbest"), metavar="N",
                        help="print the N best translations of each line with their scores, as S-i/H-i "
                             "lines (below); N <= --beam (default: one plain line per input line)")
    parser.add_argument("--attention", metavar="FILE.png",
                        help="draw the first sentence's last-layer cross-attention, one panel per head "
                             "(one checkpoint only)")
    parser.add_argument("--explore", metavar="PAGE.html",
                        help="write a page showing every layer's and head's attention, the n-best list and "
                             "each token's log-probability (one checkpoint; no sentence: an empty page "
                             "that loads --explore-json files)")
    parser.add_argument("--explore-json", metavar="FILE.json", help="write that page's data as JSON")
    parser.add_argument("--score-reference", action="store_true",
                        help="print the log-probability of each line of --reference given the line "
                             "of --input, instead of translating")
    parser.add_argument("--reference", metavar="FILE", help="references to score, line for line with --input")
    return parser


def add_checkpoint_option(parser):
    """--checkpoint PATH, repeated for an ensemble (shared with tinynmt.evaluate)."""
    parser.add_argument("--checkpoint", required=True, action="append", metavar="PATH",
                        help="checkpoint file, or run folder (uses its best.npz); repeat the flag "
                             "for an ensemble: --checkpoint A --checkpoint B")


def add_decoding_options(parser):
    """--beam, --lenpen, --max-len, --batch-size, --device (shared with tinynmt.evaluate)."""
    parser.add_argument("--beam", type=checked(int, positive, "beam"), default=1, metavar="N",
                        help="beam size; 1 is greedy search (default: 1)")
    parser.add_argument("--lenpen", type=checked(float, within(-10, 10), "lenpen"), default=1.0, metavar="A",
                        help="length penalty: a hypothesis scores sum(log p) / length**A, <eos> counted, "
                             "A in [-10, 10] so that length**A stays a float32 (default: 1.0, the mean "
                             "per token; 0: raw log-probability)")
    parser.add_argument("--max-len", type=checked(int, positive, "max_len"), default=None, metavar="N",
                        help="most tokens to generate per sentence, <eos> included (default: 50, "
                             "or the model's target positions if fewer)")
    parser.add_argument("--batch-size", type=checked(int, positive, "batch_size"), default=128, metavar="N",
                        help="sentences per batch (default: 128)")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="cpu (NumPy) or cuda (CuPy) (default: cpu)")


def check_decoding_options(args, model):
    """Range checks that need the model (one-line CLIErrors); fills in the default --max-len.
    (The flags' own limits, such as a positive --beam, are checked as they are parsed.)"""
    from ..decoding import max_positions
    positions = max_positions(model)[1]
    if args.max_len is None:
        args.max_len = min(DEFAULT_MAX_LEN, positions)
    if args.max_len > positions:
        raise CLIError(f"--max-len {args.max_len} is more than the model's {positions} target positions")


def check_modes(args):
    """Flags that do not go together (one-line CLIErrors), before anything is loaded."""
    if any(sentence.endswith(".npz") for sentence in args.sentences):
        warn("an argument ending in .npz is translated as a sentence; for an ensemble, give each "
             "checkpoint its own --checkpoint")
    if args.sentences and args.input:
        raise CLIError("give sentences as arguments or --input FILE, not both")
    if args.attention and len(args.checkpoint) > 1:
        raise CLIError(f"--attention draws one model's attention: give one --checkpoint, not {len(args.checkpoint)}")
    if args.nbest is not None and not 1 <= args.nbest <= args.beam:
        raise CLIError(f"--nbest must be in [1, --beam {args.beam}], got {args.nbest}")
    if args.reference and not args.score_reference:
        raise CLIError("--reference is read only with --score-reference")
    if args.score_reference:
        if not (args.input and args.reference) or args.sentences:
            raise CLIError("--score-reference needs --input FILE and --reference FILE (and no sentences)")
        if args.nbest is not None or args.attention:
            raise CLIError("--score-reference scores references: it takes no --nbest or --attention")
    if args.explore or args.explore_json:
        from .explore import check_explore_options
        check_explore_options(args, CLIError)


def score_references_of_files(args, checkpoint, model):
    """The --score-reference lines of --input against --reference."""
    from ..data.textfile import check_parallel
    from ..decoding import score_references
    sources, names = read_input(args.input)
    references, _ = read_input(args.reference)
    try:
        check_parallel(sources, references, args.input, args.reference)
    except DataError as err:
        raise CLIError(str(err)) from None
    scores = score_references(model, sources, references, checkpoint.src_vocab, checkpoint.trg_vocab,
                              checkpoint.tokenizer, batch_size=args.batch_size, names=names, warn=warn)
    return [score_line(s) for s in scores]


def draw_attention(translator, record, path):
    """Write the attention figure of one translated sentence."""
    from .attention_plot import plot_attention
    from ..decoding import attention_of
    if not record.src_tokens:
        warn(f"no attention drawn to {path}: the first sentence has no tokens")
        return
    attention = attention_of(translator.model, record.src_ids, record.ids, record.finished)
    rows = record.tokens + (["<eos>"] if record.finished else [])
    try:
        plot_attention(record.src_tokens, rows, attention, path)
    except (OSError, RuntimeError, ValueError) as err:    # ValueError: a format matplotlib lacks
        raise CLIError(f"cannot write --attention {path}: {err}") from None


def write_output(path, text):
    """Write text to --output `path` (stdout when None) as UTF-8, replacing the file at once."""
    with output_stream(path) as out:
        out.write(text.encode("utf-8"))


def refuse_overwriting_inputs(args):
    """OutputError when --output or --attention is the same file as an input, a checkpoint or
    each other: checked before anything is read or written."""
    inputs = [("--input", args.input), ("--reference", args.reference),
              *[("--checkpoint", checkpoint_file(path)) for path in args.checkpoint]]
    check_output(("--output", args.output), inputs)
    check_output(("--attention", args.attention), [*inputs, ("--output", args.output)])


def run(args):
    check_modes(args)
    refuse_overwriting_inputs(args)
    checkpoints, model = load_models(args.checkpoint, args.device)
    checkpoint = checkpoints[0]
    check_decoding_options(args, model)
    with output_stream(args.output) as out:        # a file replaces --output only on success
        if args.score_reference:
            out.write("".join(score_references_of_files(args, checkpoint, model)).encode("utf-8"))
            return 0
        translate_into(out, args, checkpoint, model)
        return 0


def translate_into(out, args, checkpoint, model):
    """Translate the sentences, --input or stdin, writing to the binary stream `out`."""
    from ..decoding import Translator
    translator = Translator(model, checkpoint.src_vocab, checkpoint.trg_vocab, checkpoint.tokenizer,
                            beam=args.beam, lenpen=args.lenpen, max_steps=args.max_len,
                            batch_size=args.batch_size, warn=warn, nbest=args.nbest or 1)

    def text(number, line, record):
        return record.text + "\n" if args.nbest is None else nbest_lines(number, line, record, args.nbest)
    if args.sentences or args.input:
        if args.sentences:
            lines, names = args.sentences, [f"argument {i + 1}" for i in range(len(args.sentences))]
        else:
            lines, names = read_input(args.input)
            if not lines:
                warn(f"--input {args.input} is empty: nothing to translate")
        records = translator.translations(lines, names)
        out.write("".join(text(i, line, r) for i, (line, r) in enumerate(zip(lines, records))).encode("utf-8"))
        out.flush()
        if args.attention and records:
            draw_attention(translator, records[0], args.attention)
        if args.explore or args.explore_json:
            from .explore import write_explorer
            write_explorer(args, translator, lines, records, CLIError)
        return
    if args.explore:                              # no sentences: the empty page, stdin is not read
        from .explore import write_explorer
        return write_explorer(args, translator, [], [], CLIError)
    for number, raw in enumerate(iter(sys.stdin.buffer.readline, b"")):
        name = f"<stdin> line {number + 1}"
        line = decode_line(raw[:-1] if raw.endswith(b"\n") else raw, name)
        record = translator.translations([line], [name])[0]
        out.write(text(number, line, record).encode("utf-8"))
        out.flush()
        if args.attention and number == 0:
            draw_attention(translator, record, args.attention)


def run_decoding_program(run, args, errors=(CLIError, OutputError)):
    """run(args) -> the exit status, each failure one line: `errors` and running out of memory
    `error: ...` (2), another OSError its own line (1), Ctrl-C 130. translate and evaluate."""
    keep_freed_memory()
    try:
        return flush_stdout(run(args))
    except errors as err:
        return report_error(err)
    except MemoryError as err:
        return report_error(f"out of memory: {err}; lower --beam or --batch-size")
    except OSError as err:
        return report_os_error(err)
    except KeyboardInterrupt:
        return 130


def main(argv=None):
    args = build_parser().parse_intermixed_args(argv)   # sentences before, between and after flags
    return run_decoding_program(run, args)


if __name__ == "__main__":
    sys.exit(main())
