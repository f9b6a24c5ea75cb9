"""``wsgi.file_wrapper``: a file the application hands back, sent without reading it.

PEP 3333 lets the server offer a wrapper class; an application (Flask's ``send_file``,
Django's ``FileResponse``) returns ``environ["wsgi.file_wrapper"](file, blksize)``, and
the server may send the file by its descriptor. When the file is a regular file, the
adapter asks ``segment()`` for a ``FileSegment`` covering the rest of it (from the
file's current position, no further than a Content-Length the application set), and
the server's output queue sends it with ``sendfile``: no read into Python, no worker
thread held while a slow client takes its time. Anything else (a pipe, an in-memory
file, an object without ``fileno``) is read in ``blksize`` pieces like any iterable.

The segment holds a duplicate of the descriptor (``os.dup``), released once it is sent
or dropped. So the application's ``close()`` (which PEP 3333 says the server calls once
the response is produced) runs where every other part of the application runs, on the
worker thread, at once, and may close the file: the kernel keeps the open file alive for
the segment, and ``sendfile`` with an explicit offset never moves the file's position.
"""

from __future__ import annotations

import io
import os
import stat
from typing import Any

from ...server import FileSegment


class FileWrapper:
    """PEP 3333's optional file wrapper (``environ["wsgi.file_wrapper"]``)."""

    __slots__ = ("filelike", "blksize", "_taken")

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize if isinstance(blksize, int) and blksize > 0 else 8192
        self._taken = False  # the rest of the file went out as a segment

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        if self._taken:
            raise StopIteration
        data = self.filelike.read(self.blksize)
        if not data:
            raise StopIteration
        return data  # type: ignore[no-any-return]

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def segment(self, limit_bytes: int | None = None) -> FileSegment | None:
        """The rest of the file as a segment with a descriptor of its own, or None when
        the file is not a regular file with a descriptor (then iterate instead).

        Once a segment was taken, iteration yields nothing more. Raises nothing for a
        file that offers no descriptor; OSError only from ``os.dup``.
        """
        if self._taken:
            return None
        fileno = getattr(self.filelike, "fileno", None)
        if fileno is None:
            return None
        try:
            fd = fileno()
            if not isinstance(fd, int) or not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            tell = getattr(self.filelike, "tell", None)
            offset = tell() if tell is not None else os.lseek(fd, 0, os.SEEK_CUR)
            size = os.fstat(fd).st_size
        except (OSError, ValueError, io.UnsupportedOperation):
            return None
        count = max(0, size - offset)
        if limit_bytes is not None:
            count = min(count, limit_bytes)
        own = os.dup(fd)
        self._taken = True
        return FileSegment(own, offset, count, _closer(own))


def _closer(fd: int) -> Any:
    def release() -> None:
        try:
            os.close(fd)
        except OSError:
            pass

    return release
