"""Fetching one file into a cache folder: SHA-256 checked, retried, written atomically.

    fetch("https://.../train.de.gz", Path("~/.cache/tinynmt/multi30k/train.de.gz"),
          sha256="726e...")                # -> the path, or DataError

The file is streamed into a temporary file beside `dest` (hashing as it goes, with a
tqdm progress bar), fsynced, checked, and only then renamed onto `dest` with os.replace,
so an interrupted or failed download never leaves a partial file under the final name.
Network errors, server errors (5xx, 429) and short reads are retried `retries` times
with exponential backoff (backoff, 2*backoff, 4*backoff seconds). A 404 (or a missing
file:// path) and a checksum mismatch are not retried: trying again gives the same bytes.
`check(path)` may inspect the finished temporary file (e.g. test that it decompresses)
when no hash is known. `opener` and `sleep` exist so tests can run without a network.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from tqdm import tqdm

from .errors import DataError

_CHUNK = 1 << 16
_PERMANENT_HTTP = {400, 401, 403, 404, 410}


class _Retryable(Exception):
    """A failure worth another attempt (network trouble, short read, server error)."""


def _download_once(url: str, tmp, timeout: float, opener: Callable, progress: bool, desc: str) -> str:
    """Stream `url` into the open file `tmp`; return the SHA-256 hex digest of what was written."""
    try:
        response = opener(url, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code in _PERMANENT_HTTP:
            raise DataError(f"{url}: HTTP {err.code} {err.reason}; the file is not on the server") from None
        raise _Retryable(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, FileNotFoundError):
            raise DataError(f"{url}: no such file") from None
        raise _Retryable(str(err.reason)) from None
    except (OSError, http.client.HTTPException) as err:
        raise _Retryable(str(err) or type(err).__name__) from None
    digest = hashlib.sha256()
    received = 0
    with response:
        length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
        total = int(length) if length and length.isdigit() else None
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress, leave=False) as bar:
            try:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    tmp.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise _Retryable(f"connection broke after {received} bytes ({err or type(err).__name__})") from None
    if total is not None and received != total:
        raise _Retryable(f"got {received} of {total} bytes")
    tmp.flush()
    os.fsync(tmp.fileno())  # the bytes are on disk before the rename makes them visible
    return digest.hexdigest()


def fetch(url: str, dest: Path, sha256: Optional[str] = None, check: Optional[Callable[[Path], None]] = None,
          retries: int = 3, backoff: float = 1.0, timeout: float = 30.0, progress: bool = True,
          opener: Optional[Callable] = None, sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download `url` to `dest` atomically, verifying `sha256` (or running `check`) first."""
    if retries < 0:
        raise DataError(f"retries must be >= 0, got {retries}")
    dest = Path(dest)
    opener = opener or urllib.request.urlopen
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create folder {dest.parent} ({err.strerror or err}); "
                        "set TINYNMT_CACHE to a writable folder") from None
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as tmp:
                got = _download_once(url, tmp, timeout, opener, progress, dest.name)
            if sha256 is not None and got != sha256:
                raise DataError(f"{url}: checksum mismatch (SHA-256 {got}, expected {sha256}); "
                                "the download is damaged or the file changed upstream")
            if check is not None:
                check(tmp_path)
            os.replace(tmp_path, dest)
            return dest
        except _Retryable as err:
            if attempt == attempts:
                raise DataError(f"could not download {url} after {attempts} attempts ({err}); "
                                "check the network or place the file by hand and pass --data-dir") from None
            delay = backoff * 2 ** (attempt - 1)
            tqdm.write(f"download of {dest.name} failed ({err}); retry {attempt} of {retries} in {delay:g} s",
                       file=sys.stderr)
            sleep(delay)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()
    raise AssertionError("unreachable")  # the loop returns or raises
