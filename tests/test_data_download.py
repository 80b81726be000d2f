"""Downloading without a network: file:// URLs and a scripted opener."""
import gzip
import io
import shutil
import urllib.error

import pytest

from tinynmt.data import DataError, read_multi30k
from tinynmt.data import multi30k
from tinynmt.data.download import fetch
from tinynmt.data.multi30k import SHA256

REPO = multi30k.REPO_DIR


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local 'server' folder behind TINYNMT_MULTI30K_URL, an empty cache, no repository copy."""
    served = tmp_path / "served"
    served.mkdir()
    monkeypatch.setattr(multi30k, "REPO_DIR", tmp_path / "no-repo")
    monkeypatch.setenv("TINYNMT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TINYNMT_MULTI30K_URL", served.as_uri() + "/")
    return served


def cache_files(tmp_path):
    folder = tmp_path / "cache" / "multi30k"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class FakeResponse(io.BytesIO):
    """Enough of http.client.HTTPResponse for fetch: read(), headers, a context manager."""

    def __init__(self, data, length=None, break_after=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data) if length is None else length)}
        self.break_after = break_after

    def read(self, n=-1):
        if self.break_after is not None:
            if self.tell() >= self.break_after:
                raise ConnectionResetError("connection reset by peer")
            n = min(n, self.break_after - self.tell())
        return super().read(n)


class ScriptedOpener:
    """Plays a list of outcomes: an exception to raise, or a response to return."""

    def __init__(self, *outcomes):
        self.outcomes, self.calls = list(outcomes), 0

    def __call__(self, url, timeout):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_download_verifies_and_caches(server, tmp_path):
    for name in ("val.de.gz", "val.en.gz"):
        shutil.copy(REPO / name, server / name)
    src, trg = read_multi30k("val", "de", "en", progress=False)
    assert len(src) == len(trg) == 1014
    assert cache_files(tmp_path) == ["val.de.gz", "val.en.gz"]
    for name in ("val.de.gz", "val.en.gz"):
        (server / name).unlink()  # the second read needs no server
    assert read_multi30k("val", "de", "en", progress=False)[0] == src


def test_checksum_failure_leaves_nothing_behind(server, tmp_path):
    shutil.copy(REPO / "val.en.gz", server / "val.de.gz")  # right name, wrong bytes
    with pytest.raises(DataError) as err:
        read_multi30k("val", "de", "en", progress=False)
    assert "checksum mismatch" in str(err.value) and SHA256["val.de.gz"] in str(err.value)
    assert cache_files(tmp_path) == []  # no val.de.gz and no .part leftovers


def test_unknown_hash_file_must_be_complete_gzip_utf8(server, tmp_path):
    good = gzip.compress("Un homme.\nDeux femmes.\n".encode("utf-8"))
    (server / "val.fr.gz").write_bytes(good[:-10])  # truncated: gzip's length/CRC check fails
    with pytest.raises(DataError, match="damaged gzip"):
        multi30k.read_split("val", "fr", progress=False)
    assert cache_files(tmp_path) == []
    (server / "val.fr.gz").write_bytes(good)
    assert multi30k.read_split("val", "fr", progress=False) == ["Un homme.", "Deux femmes."]


def test_missing_on_server_is_not_retried(server):
    with pytest.raises(DataError, match=r"val\.fr\.gz: no such file"):
        multi30k.read_split("val", "fr", progress=False)


def test_retries_with_backoff_then_succeeds(tmp_path):
    data = b"payload" * 1000
    opener = ScriptedOpener(urllib.error.URLError("temporary failure in name resolution"),
                            urllib.error.HTTPError("u", 503, "Service Unavailable", None, None),
                            FakeResponse(data, break_after=100),   # connection drops mid-file
                            FakeResponse(data[:50], length=len(data)),  # short read
                            FakeResponse(data))
    slept = []
    dest = tmp_path / "f.bin"
    fetch("https://example.invalid/f.bin", dest, retries=4, backoff=0.5, opener=opener,
          sleep=slept.append, progress=False)
    assert dest.read_bytes() == data
    assert opener.calls == 5 and slept == [0.5, 1.0, 2.0, 4.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_gives_up_after_the_last_retry(tmp_path):
    opener = ScriptedOpener(*[urllib.error.URLError("network is unreachable")] * 3)
    slept = []
    with pytest.raises(DataError, match=r"after 3 attempts \(network is unreachable\)"):
        fetch("https://example.invalid/f.bin", tmp_path / "f.bin", retries=2, opener=opener,
              sleep=slept.append, progress=False)
    assert opener.calls == 3 and slept == [1.0, 2.0]
    assert list(tmp_path.iterdir()) == []


def test_http_404_is_not_retried(tmp_path):
    opener = ScriptedOpener(urllib.error.HTTPError("u", 404, "Not Found", None, None))
    with pytest.raises(DataError, match="HTTP 404"):
        fetch("https://example.invalid/f.bin", tmp_path / "f.bin", opener=opener, sleep=lambda s: None, progress=False)
    assert opener.calls == 1


def test_checksum_failure_is_not_retried_and_keeps_old_file(tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"previous good copy")
    opener = ScriptedOpener(FakeResponse(b"tampered"))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch("https://example.invalid/f.bin", dest, sha256="0" * 64, opener=opener, progress=False)
    assert opener.calls == 1 and dest.read_bytes() == b"previous good copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
