"""translate's --explore PAGE.html and --explore-json FILE: the explorer page (or its JSON data)
of the sentences translate has just translated and printed (tinynmt/interop/explorer.py).

    python -m tinynmt.translate --checkpoint RUN --beam 5 --nbest 3 --explore page.html "Ein Hund rennt."
    python -m tinynmt.translate --checkpoint RUN --explore-json data.json --input test.de
    python -m tinynmt.translate --checkpoint RUN --explore viewer.html   # no sentence: the empty viewer

The paths are checked before anything is loaded: neither may be a checkpoint, an input, an
output or the other one; a folder or another non-file is refused, and so is a missing folder.
"""
import os
from pathlib import Path


def explore_flags(args):
    """(flag, path) of the explorer outputs given."""
    return [(flag, path) for flag, path in (("--explore", args.explore), ("--explore-json", args.explore_json))
            if path is not None]


def same_file(a, b):
    """Whether two paths name one file (through symlinks; also when neither exists yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def paths_read_or_written(args):
    """(what, path) of every other file translate reads or writes with these arguments."""
    paths = []
    for checkpoint in args.checkpoint:
        paths.append(("a --checkpoint", checkpoint))
        if Path(checkpoint).is_dir():
            paths.append(("a --checkpoint", str(Path(checkpoint) / "best.npz")))  # what a run folder means
    for flag in ("input", "reference", "output", "attention"):
        value = getattr(args, flag)
        if value not in (None, "-"):
            paths.append((f"--{flag}", value))
    return paths


def check_explore_options(args, error):
    """Refuse, as error(message) (an exception class), what --explore/--explore-json cannot do."""
    flags = explore_flags(args)
    if len(args.checkpoint) > 1:
        raise error(f"{flags[0][0]} shows one model's attention: give one --checkpoint, not {len(args.checkpoint)}")
    if args.score_reference:
        raise error(f"--score-reference scores references: it takes no {flags[0][0]}")
    if args.explore_json and not (args.sentences or args.input):
        raise error("--explore-json exports the sentences translated: give some, or --input FILE")
    if args.explore and args.explore_json and same_file(args.explore, args.explore_json):
        raise error("--explore and --explore-json name the same file")
    for flag, path in flags:
        for what, other in paths_read_or_written(args):
            if same_file(path, other):
                raise error(f"{flag} {path} is {what}: it would be overwritten; write the page elsewhere")
        target = Path(os.path.realpath(path))
        if target.exists() and not target.is_file():
            raise error(f"cannot write {flag} {path}: not a regular file")
        if not target.parent.is_dir():
            raise error(f"cannot write {flag} {path}: no folder {target.parent}")


def write_explorer(args, translator, lines, records, error):
    """Write the page and/or the JSON of `lines` and their records (no lines: the empty viewer)."""
    from ..interop.explorer import explorer_data, write_json, write_page
    data = explorer_data(translator, lines, records, checkpoint=args.checkpoint[0]) if lines else None
    for flag, path in explore_flags(args):
        try:
            write_page(path, data) if flag == "--explore" else write_json(path, data)
        except OSError as err:
            raise error(f"cannot write {flag} {path}: {err.strerror or err}") from None
