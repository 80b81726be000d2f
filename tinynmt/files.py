"""Writing the user's files so that none is lost: every program and the checkpoints write here.

    check_output(("--output", out), [("--input", src), ("--checkpoint", ckpt)])  # OutputError
    atomic_write("runs/x/best.npz", lambda f: np.savez(f, **arrays))
    with output_stream(args.output) as out:     # stdout, or a temp file moved over --output
        out.write(b"...")                        # at the end of the with-block, if no error

A replaced file goes through a temporary file in its own folder, flushed and fsynced, then
os.replace()d over the old one (and the folder fsynced): a crash, a full disk or an error
half-way leaves the old file as it was and no temporary file behind. Only regular files are
replaced: a folder, a device (/dev/full) or a pipe is refused with an OutputError. A symlink is
written through (its target is replaced, the link stays a link), and the new file keeps the
old one's mode. An OSError while writing names the user's path (err.filename), never the
temporary one. Standard library only, so every layer may use it.
"""
import contextlib
import os
import secrets
import stat
import sys
from pathlib import Path


class OutputError(Exception):
    """An output that would overwrite an input, or is not a regular file: one line, nothing written."""


def same_file(a, b):
    """Whether paths a and b name one file: the same inode (hard links, symlinks), or for a path
    not created yet, the same real path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(output, inputs=()):
    """OutputError, before any work, when `output`, a (flag, path), cannot be replaced safely: it is
    the same file as one of `inputs` (flag, path), a folder, a device, or in a missing folder.
    None and "-" (stdout) are skipped."""
    out_flag, out_path = output
    if out_path is None or out_path == "-":
        return
    writable_target(out_path, f"{out_flag} {out_path}")
    for in_flag, in_path in inputs:
        if in_path is not None and in_path != "-" and same_file(out_path, in_path):
            raise OutputError(f"{out_flag} {out_path} is the same file as {in_flag} {in_path}: writing "
                              f"it would destroy it; give another {out_flag}")


def writable_target(path, name=None):
    """(the file a write to `path` replaces, its os.stat or None when absent): a symlink's target;
    OutputError (naming it `name`, default the path) when that is a folder, a device, a pipe or a
    socket, or when its folder is missing."""
    name = name or str(path)
    target = Path(os.path.realpath(path))
    try:
        info = os.stat(target)
    except FileNotFoundError:
        if not target.parent.is_dir():
            raise OutputError(f"cannot write {name}: no folder {target.parent}") from None
        return target, None
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"cannot write {name}: it is a folder; give a file name")
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"cannot write {name}: not a regular file (a device, pipe or socket)")
    return target, info


@contextlib.contextmanager
def replacing(path):
    """A binary file to write in place of `path`: a temporary file beside its target, moved over it
    when the with-block ends without an error, else removed (the old file stays as it was)."""
    target, old = writable_target(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)  # umask applies
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            if old is not None:
                os.chmod(tmp, stat.S_IMODE(old.st_mode))   # the replaced file's permissions
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as err:
        if err.errno is None or (err.filename is not None and err.filename != str(tmp)):
            raise                                                      # another file's error
        raise OSError(err.errno, err.strerror, str(path)) from None   # the user's name, not the temp's
    fsync_dir(target.parent)


def atomic_write(path, write):
    """Call write(file) on a temporary file beside `path`, then move it over `path` (see replacing)."""
    with replacing(path) as f:
        write(f)


def fsync_dir(folder):
    """Make a rename in `folder` durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_stream(path):
    """Where a program's text goes, as a binary stream: stdout when `path` is None (OutputError if
    stdout is closed), else a file that replaces `path` only when the with-block succeeds."""
    if path is None:
        if sys.stdout is None:
            raise OutputError("standard output is closed; give --output FILE or redirect it")
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with replacing(path) as f:
        yield f
