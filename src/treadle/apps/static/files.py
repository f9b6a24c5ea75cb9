"""Open files ready to send, and the cache that keeps them: the per-request cost of a file.

A hit in the cache serves a file with no system call before ``sendfile`` (or none at
all, for a small file whose bytes are kept): the path was mapped and checked, the file
opened, its ``fstat`` taken, its validators and response fields built, once. The cost
of a hit is a dict lookup and a clock read.

Correctness of a cache is in its invalidation. Each entry carries a signature: inode,
size and modification time of the file and of each precompressed variant that could
exist beside it (``.br``, ``.gz``), present or not. An entry older than ``valid_s`` is
checked again with ``stat`` calls before use; a different signature drops it (a file
edited, replaced by a rename, deleted, or a variant added). So a change is seen within
``valid_s`` seconds (``--file-cache-valid``), at a cost of a few ``stat`` calls per
file per ``valid_s`` under load: the trade nginx's ``open_file_cache_valid`` makes.

Descriptors are shared. ``sendfile`` and ``pread`` take an explicit offset and never
move a file position, so any number of responses can send from one descriptor at once.
Each response ``acquire``s the entry; a dropped entry closes its descriptor when the
last response using it releases it. With ``max_entries`` 0 nothing is kept: every
request opens its file and the last release closes it.

Small files (up to ``SMALL_FILE_BYTES``) also keep their bytes: the response then
leaves with one ``send`` of head and body together, which beats any ``sendfile`` at
that size. The memory this costs is bounded by ``max_entries * SMALL_FILE_BYTES``.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable

from ...http import PreparedFields, format_date
from .conditions import make_etag
from .content_types import content_type

#: files up to this size are kept in memory as well as open
SMALL_FILE_BYTES = 32 * 1024
#: precompressed variants looked for beside a file, in the server's order of preference
VARIANTS = (("br", ".br"), ("gzip", ".gz"))

Signature = tuple[tuple[int, int, int] | None, ...]


class NotAFileError(Exception):
    """The path is not a regular file (a folder, a FIFO, a device): never sent."""


class OpenFile:
    """One regular file kept open, with what its responses need.

    ``fields`` are the response fields of a 200 without Content-Length (``respond``
    adds it); a variant's include Content-Encoding and Vary.
    """

    __slots__ = (
        "fs_path",
        "fd",
        "size",
        "mtime_s",
        "etag",
        "fields",
        "prepared",
        "content",
        "variants",
        "signature",
        "checked_at",
        "users",
        "dropped",
    )

    def __init__(
        self,
        fs_path: str,
        fd: int,
        st: os.stat_result,
        fields: list[tuple[bytes, bytes]],
        coding: str = "",
    ) -> None:
        self.fs_path = fs_path
        self.fd = fd
        self.size = st.st_size
        self.mtime_s = int(st.st_mtime)
        # No inode in the tag: it would differ between servers sharing one folder, and
        # it tells clients something about the disk they have no need to know.
        self.etag = make_etag(st.st_size, st.st_mtime_ns, coding=coding)
        self.fields = fields + [
            (b"etag", self.etag),
            (b"last-modified", format_date(self.mtime_s)),
        ]
        #: ``fields`` validated and serialised once, for the common 200 from memory
        self.prepared: PreparedFields | None = None
        self.content: bytes | None = None
        if self.size <= SMALL_FILE_BYTES:
            self.content = _read_all(fd, self.size)
        self.variants: dict[str, OpenFile] = {}
        self.signature: Signature = ()
        self.checked_at = 0.0
        self.users = 0
        self.dropped = False

    def close_if_unused(self) -> None:
        if self.dropped and self.users == 0 and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            for variant in self.variants.values():
                variant.dropped = True
                variant.close_if_unused()


def _read_all(fd: int, size: int) -> bytes:
    pieces = []
    offset = 0
    while offset < size:
        piece = os.pread(fd, size - offset, offset)
        if not piece:
            break  # shrank meanwhile: what there is (the signature check will catch it)
        pieces.append(piece)
        offset += len(piece)
    return b"".join(pieces)


def _stat_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def signature_of(fs_path: str) -> Signature:
    return (_stat_key(fs_path), *(_stat_key(fs_path + suffix) for _, suffix in VARIANTS))


def open_regular(fs_path: str) -> tuple[int, os.stat_result]:
    """Open ``fs_path`` for reading if it is a regular file.

    ``O_NONBLOCK`` so that a FIFO put in its place cannot block the loop in ``open``;
    the ``fstat`` after opening is what decides (the path may have changed since any
    earlier ``stat``). Raises OSError (absent, no permission) and NotAFileError.
    """
    fd = os.open(fs_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotAFileError(fs_path)
    return fd, st


class FileCache:
    """Open files by request path; see the module docstring."""

    def __init__(
        self,
        base_fields: list[tuple[bytes, bytes]],
        max_entries: int,
        valid_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_fields = base_fields
        self.max_entries = max_entries
        self.valid_s = valid_s
        self.clock = clock
        self._entries: dict[bytes, OpenFile] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> OpenFile | None:
        """The entry for ``key`` if it is still true of the files on disk."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if now - entry.checked_at < self.valid_s:
            return entry
        if signature_of(entry.fs_path) == entry.signature:
            entry.checked_at = now
            return entry
        self._drop(key)
        return None

    def load(self, key: bytes, fs_path: str) -> OpenFile:
        """Open ``fs_path`` (and its variants) as the entry for ``key``.

        Raises OSError and NotAFileError as ``open_regular`` does.
        """
        signature = signature_of(fs_path)
        entry = self._open(fs_path, content_type(os.path.basename(fs_path)), "")
        if any(signature[1:]):
            vary = [(b"vary", b"accept-encoding")]
            entry.fields.extend(vary)
            for (coding, suffix), key_stat in zip(VARIANTS, signature[1:], strict=True):
                if key_stat is None:
                    continue
                try:
                    variant = self._open(fs_path + suffix, entry.fields[0][1], coding)
                except (OSError, NotAFileError):
                    continue
                variant.fields[-2:-2] = [(b"content-encoding", coding.encode()), *vary]
                entry.variants[coding] = variant
        for item in (entry, *entry.variants.values()):
            item.prepared = PreparedFields(item.fields)
        entry.signature = signature
        entry.checked_at = self.clock()
        if self.max_entries:
            if len(self._entries) >= self.max_entries:
                self._drop(next(iter(self._entries)))  # the oldest
            old = self._entries.get(key)
            if old is not None:
                self._drop(key)
            self._entries[key] = entry
        else:
            entry.dropped = True  # nothing is kept: the last release closes it
        return entry

    def _open(self, fs_path: str, media_type: bytes, coding: str) -> OpenFile:
        fd, st = open_regular(fs_path)
        fields = [(b"content-type", media_type), *self.base_fields]
        try:
            return OpenFile(fs_path, fd, st, fields, coding)
        except OSError:
            os.close(fd)
            raise

    def acquire(self, entry: OpenFile) -> Callable[[], None]:
        """Count one more response using ``entry``; returns its release (call once)."""
        entry.users += 1

        def release() -> None:
            entry.users -= 1
            entry.close_if_unused()

        return release

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        entry.dropped = True
        entry.close_if_unused()

    def clear(self) -> None:
        """Forget every entry (after an upload changed the folder); files still being
        sent stay open until their responses release them."""
        for key in list(self._entries):
            self._drop(key)
