"""The open-file cache: what a hit costs nothing, and when an entry must be dropped."""

from __future__ import annotations

import os

import pytest

from tests.support import FakeClock
from treadle.apps.static.files import SMALL_FILE_BYTES, FileCache, NotAFileError


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _cache(clock: FakeClock, entries: int = 8) -> FileCache:
    return FileCache([(b"accept-ranges", b"bytes")], entries, 1.0, clock)


def test_a_hit_within_the_valid_time_needs_no_stat(tmp_path, clock, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_bytes(b"alpha")
    cache = _cache(clock)
    entry = cache.load(b"/a.txt", str(path))
    assert entry.content == b"alpha" and entry.size == 5
    assert (b"content-type", b"text/plain; charset=utf-8") in entry.fields
    assert any(name == b"etag" for name, _ in entry.fields)

    def no_stat(*args, **kwargs):
        raise AssertionError("stat on a fresh hit")

    monkeypatch.setattr(os, "stat", no_stat)
    assert cache.get(b"/a.txt") is entry


def test_a_changed_file_is_dropped_after_the_valid_time(tmp_path, clock):
    path = tmp_path / "a.txt"
    path.write_bytes(b"alpha")
    cache = _cache(clock)
    entry = cache.load(b"/a.txt", str(path))
    replacement = tmp_path / "new"
    replacement.write_bytes(b"beta!!")
    os.replace(replacement, path)  # a new inode under the same name
    assert cache.get(b"/a.txt") is entry  # still trusted within the valid time
    clock.advance(1.5)
    assert cache.get(b"/a.txt") is None
    assert entry.fd == -1  # closed: nothing was sending from it
    fresh = cache.load(b"/a.txt", str(path))
    assert fresh.content == b"beta!!" and fresh.etag != entry.etag


def test_an_unchanged_file_survives_revalidation(tmp_path, clock):
    path = tmp_path / "a.txt"
    path.write_bytes(b"alpha")
    cache = _cache(clock)
    entry = cache.load(b"/a.txt", str(path))
    clock.advance(5.0)
    assert cache.get(b"/a.txt") is entry


def test_a_variant_appearing_drops_the_entry(tmp_path, clock):
    path = tmp_path / "app.js"
    path.write_bytes(b"x" * 100)
    cache = _cache(clock)
    entry = cache.load(b"/app.js", str(path))
    assert entry.variants == {}
    (tmp_path / "app.js.gz").write_bytes(b"gz")
    clock.advance(1.5)
    assert cache.get(b"/app.js") is None
    entry = cache.load(b"/app.js", str(path))
    assert set(entry.variants) == {"gzip"}
    gzip = entry.variants["gzip"]
    assert (b"content-encoding", b"gzip") in gzip.fields
    assert (b"vary", b"accept-encoding") in gzip.fields and (b"vary", b"accept-encoding") in (
        entry.fields
    )
    assert gzip.etag != entry.etag


def test_a_dropped_entry_stays_open_until_its_last_response_releases_it(tmp_path, clock):
    path = tmp_path / "big.bin"
    path.write_bytes(b"b" * (SMALL_FILE_BYTES + 1))
    cache = _cache(clock)
    entry = cache.load(b"/big.bin", str(path))
    assert entry.content is None  # too large to keep in memory
    release = cache.acquire(entry)
    cache.clear()
    assert _fd_open(entry.fd)  # a response is still sending from it
    release()
    assert entry.fd == -1


def test_the_oldest_entry_goes_when_full(tmp_path, clock):
    cache = _cache(clock, entries=2)
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(name.encode())
        cache.load(b"/" + name.encode(), str(tmp_path / name))
    assert len(cache) == 2
    assert cache.get(b"/a") is None and cache.get(b"/c") is not None


def test_no_cache_means_every_response_closes_its_file(tmp_path, clock):
    path = tmp_path / "a"
    path.write_bytes(b"a" * (SMALL_FILE_BYTES + 10))
    cache = _cache(clock, entries=0)
    entry = cache.load(b"/a", str(path))
    assert len(cache) == 0
    release = cache.acquire(entry)
    assert _fd_open(entry.fd)
    release()
    assert entry.fd == -1


def test_only_regular_files_are_opened(tmp_path, clock):
    os.mkfifo(tmp_path / "fifo")
    cache = _cache(clock)
    with pytest.raises(NotAFileError):
        cache.load(b"/fifo", str(tmp_path / "fifo"))  # O_NONBLOCK: never waits for a writer
    with pytest.raises(FileNotFoundError):
        cache.load(b"/gone", str(tmp_path / "gone"))
