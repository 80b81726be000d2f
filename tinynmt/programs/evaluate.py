"""Score a checkpoint on a test set: loss, perplexity, sacreBLEU, tokenized BLEU and decoding speed.

    python -m tinynmt.evaluate --checkpoint runs/RUN                    # Multi30k test_2016_flickr
    python -m tinynmt.evaluate --checkpoint runs/RUN --beam 5 --output hyp.en
    python -m tinynmt.evaluate --checkpoint ckpt.npz --src-file test.de --ref-file test.en
    python -m tinynmt.evaluate --checkpoint runs/OWN --split test1      # a run on your own corpus
    python -m tinynmt.evaluate --checkpoint runs/A --checkpoint runs/B --beam 5   # an ensemble
    python -m tinynmt.evaluate --checkpoint runs/RUN --score-reference --output scores.tsv

Several checkpoints (--checkpoint repeated) are decoded and scored as an ensemble (the log of
the models' mean probability, as in tinynmt.translate); their vocabularies and tokenizers
must be the same.

Loss: teacher-forced cross-entropy of the references (padding ignored, no label smoothing),
batched and averaged as training's evaluate() does (the mean of the batch losses at the run's
batch size; per token for a run with a token budget), so it is the test loss the trainer
reports; PPL = exp(loss). The line after it
gives the plain per-token cross-entropy and its perplexity.
BLEU: sacrebleu.corpus_bleu of the detokenized hypotheses against the raw reference
lines, lowercased when the model's tokenizer lowercases; the same number as
`sacrebleu REF -i HYP [-lc]` on the --output file. The line after it, "BLEU (Moses-tokenized,
lowercased; fairseq/multeval style)": both sides lowercased and Moses-tokenized as Multi30k's
data/task1/tok files (in the target language), BLEU over those tokens without smoothing, the
figure papers on Multi30k publish (fairseq's BLEU4, multi-bleu.perl, multeval). Speed: sentences per second of the
whole translation (tokenize, decode, detokenize), greedy (--beam 1) or beam search.
Empty source lines give empty hypotheses; over-long lines are cut with a warning (see
tinynmt.translate). --score-reference: instead of all that, one line per sentence with the
log-probability of its reference (tinynmt.translate --score-reference's format: sum, mean
per token, each token's), to --output or stdout. --output is written to a temporary file
beside it and moved over it only when the run succeeds; naming an input or a checkpoint is
refused before anything runs. Errors (missing checkpoint or data, an empty test set, a flag
value out of range): `error: ...`, exit status 2; a file or stdout that cannot be written:
`error: ...`, exit status 1.
"""
import argparse
import sys
from pathlib import Path

from ..backend import BackendError, get_array_module, synchronize
from .cli import OneLineParser, checkpoint_file
from ..data import DataError, read_lines, read_multi30k
from ..data.corpus import find_side
from ..data.multi30k import find_file
from ..data.textfile import check_parallel
from ..decoding import members, score_references
from ..decoding.metrics import evaluate_bleu, evaluate_loss, tokenized_bleu_score
from .output_lines import score_line
from ..files import OutputError, check_output
from ..training.corpus_data import corpus_test_set, uses_own_corpus
from ..training.runlog import perplexity
from .translate import (CLIError, add_checkpoint_option, add_decoding_options, check_decoding_options,
                        load_models, run_decoding_program, warn, write_output)


def build_parser():
    parser = OneLineParser(
        prog="python -m tinynmt.evaluate", description=__doc__.splitlines()[0],
        epilog=__doc__[__doc__.index("Loss:"):], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_option(parser)
    parser.add_argument("--split", metavar="NAME",
                        help="split to score: Multi30k's (default: the run's test split, test_2016_flickr), "
                        "or for a run on its own corpus val, test, test1, ... (default: test)")
    parser.add_argument("--src-file", metavar="F", help="score this source file instead of a Multi30k split")
    parser.add_argument("--ref-file", metavar="F", help="references of --src-file, line for line")
    parser.add_argument("--data-dir", metavar="DIR", help="folder with hand-placed Multi30k files")
    parser.add_argument("--output", metavar="HYP_FILE", help="write the hypotheses here, one per line "
                        "(with --score-reference: the scores)")
    parser.add_argument("--score-reference", action="store_true",
                        help="print the log-probability of each reference instead of evaluating (below)")
    add_decoding_options(parser)
    return parser


def read_test_set(args, config):
    """(source lines, reference lines, a description) from --src-file/--ref-file or a split."""
    if (args.src_file is None) != (args.ref_file is None):
        raise CLIError("give --src-file and --ref-file together")
    if args.src_file is not None:
        if args.split:
            raise CLIError("give --split or --src-file/--ref-file, not both")
        src_lines, ref_lines = read_lines(args.src_file), read_lines(args.ref_file)
        check_parallel(src_lines, ref_lines, args.src_file, args.ref_file)
        return src_lines, ref_lines, args.src_file
    if uses_own_corpus(config):       # trained with --data DIR or --train PREFIX: its own files
        test_set = corpus_test_set(config, args.split)
        check_output(("--output", args.output), [("the run's corpus", path) for path in own_corpus_files(config)])
        return test_set
    split = args.split or getattr(config, "test", None) or "test_2016_flickr"
    data_dir = args.data_dir or getattr(config, "data_dir", None)
    src_lines, ref_lines = read_multi30k(split, config.src, config.trg, data_dir=data_dir)
    for lang in (config.src, config.trg):     # the files just read: --output must not be one of them
        check_output(("--output", args.output), [(f"{split}.{lang}", find_file(split, lang, data_dir)[0])])
    return src_lines, ref_lines, f"Multi30k {split} {config.src}->{config.trg}"


def own_corpus_files(config):
    """The files of a run's own corpus that evaluate reads from: the prepared folder's, or the
    raw --valid/--test files (for --output's same-file check)."""
    if config.data:
        return sorted(Path(config.data).iterdir())
    return [find_side(prefix, lang) for prefix in (config.valid, config.test_prefix) if prefix
            for lang in (config.src, config.trg)]


def run(args):
    if sys.stdout is None:
        raise OutputError("standard output is closed: the scores have nowhere to go; redirect it")
    inputs = [("--src-file", args.src_file), ("--ref-file", args.ref_file),
              *[("--checkpoint", checkpoint_file(path)) for path in args.checkpoint]]
    check_output(("--output", args.output), inputs)
    checkpoints, model = load_models(args.checkpoint, args.device)
    checkpoint, config = checkpoints[0], checkpoints[0].config
    check_decoding_options(args, model)
    try:
        src_lines, ref_lines, what = read_test_set(args, config)
    except DataError as err:
        raise CLIError(str(err)) from None
    if not src_lines:
        raise CLIError(f"{what} holds no sentences: nothing to score")
    vocabs = (checkpoint.src_vocab, checkpoint.trg_vocab, checkpoint.tokenizer)
    if args.score_reference:
        scores = score_references(model, src_lines, ref_lines, *vocabs, batch_size=args.batch_size, warn=warn)
        write_output(args.output, "".join(score_line(s) for s in scores))
        return 0
    names = ", ".join(str(c.path) for c in checkpoints)
    print(f"checkpoint{'s' if len(checkpoints) > 1 else ''} {names}: {what}, {len(src_lines):,} sentences")
    result = evaluate_loss(model, src_lines, ref_lines, *vocabs, batch_size=config.batch_size,
                           max_tokens=config.max_tokens)
    label = "Val." if args.split == "val" else "Test"      # the tutorial's two wordings
    print(f"| {label} Loss: {result.loss:.3f} | {label} PPL: {perplexity(result.loss):7.3f} |")
    print(f"per token: loss {result.token_nll:.4f}, PPL {perplexity(result.token_nll):.3f} "
          f"({result.n_tokens:,} target tokens)", flush=True)
    synchronize(get_array_module(members(model)[0].parameters()[0].data))
    cut = []  # one summary line instead of a warning per over-long sentence
    score, hypotheses, seconds = evaluate_bleu(model, src_lines, ref_lines, *vocabs, beam=args.beam,
                                               lenpen=args.lenpen, batch_size=args.batch_size,
                                               max_steps=args.max_len, warn=cut.append)
    if cut:
        warn(f"{len(cut):,} source sentences were longer than the model's positions and were cut "
             f"to fit; the first: {cut[0]}")
    print(score.format(signature=score.signature), flush=True)
    tokenized, signature = tokenized_bleu_score(hypotheses, ref_lines, config.trg)
    print(tokenized.format(signature=signature), flush=True)
    how = "greedy" if args.beam == 1 else f"beam {args.beam}, lenpen {args.lenpen:g}"
    rate = len(src_lines) / seconds if seconds > 0 else float("inf")
    print(f"decoding ({how}, max_len {args.max_len}, batch {args.batch_size}, {model.device}): "
          f"{len(src_lines):,} sentences in {seconds:.2f} s, {rate:.1f} sentences/s", flush=True)
    if args.output:
        write_output(args.output, "".join(h + "\n" for h in hypotheses))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_decoding_program(run, args, (CLIError, DataError, BackendError, OutputError))


if __name__ == "__main__":
    sys.exit(main())
