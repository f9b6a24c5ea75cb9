"""Uploads: PUT of one file, and POST of a listing's form with several (``--upload``).

Nothing reaches its final name before the whole body is in and checked. Each file is
written to a hidden temporary file in its target folder (``.NAME.<8 hex digits>.part``,
created with ``O_EXCL``; hidden, so neither listed nor served while dot-files are off),
and only once the request body has ended, its length checked and the multipart framing
closed, is it linked into place: ``os.link`` then ``unlink`` when existing files must
not be replaced (the link fails if the name exists, atomically), ``os.replace`` with
``--overwrite``. A client that disconnects, stalls past the body deadline or breaks the
framing makes the server call ``on_abort``, which removes the temporary files: nothing
is left under the final name, and no temporary file behind.

Writing happens on the loop thread, one received piece at a time (at most 64 KiB,
what one ``recv`` gives): a write into the page cache costs microseconds, so other
connections do not notice. A disk that blocks for long (a stalled network file system)
would stall the loop for as long; a worker thread would avoid that at the cost of a
hand-off per piece, and is not done.

A PUT answers 201 with Location for a new file and 204 for a replaced one; an existing
file without ``--overwrite`` is 409. A form POST answers 303 to the folder's listing, so
a browser shows the result. The size limit is ``--max-body-bytes``: the HTTP core
answers 413 as soon as a Content-Length or the chunked body passes it.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import TYPE_CHECKING
from urllib.parse import quote

from ...http import Headers
from ...server import Exchange
from .conditions import evaluate, make_etag
from .multipart import (
    MultipartEnd,
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_from_content_type,
)
from .names import sanitize_filename

if TYPE_CHECKING:
    from .app import StaticFiles

log = logging.getLogger("treadle.static")

_TEXT = (b"content-type", b"text/plain; charset=utf-8")


class UploadRefused(Exception):
    """An upload that cannot be stored; carries the status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PendingFile:
    """One upload being written to its temporary file."""

    __slots__ = ("folder", "name", "temp_path", "fd", "size")

    def __init__(self, folder: str, name: str) -> None:
        self.folder = folder
        self.name = name
        token = secrets.token_hex(4)
        self.temp_path = os.path.join(folder, f".{name[:200]}.{token}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self.fd = os.open(self.temp_path, flags, 0o644)
        self.size = 0

    @property
    def final_path(self) -> str:
        return os.path.join(self.folder, self.name)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self.close()
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass

    def commit(self, overwrite: bool) -> bool:
        """Put the file under its final name; returns True if it replaced one.

        Raises UploadRefused (409) when the name exists and ``overwrite`` is off.
        """
        self.close()
        final = self.final_path
        if overwrite:
            existed = os.path.lexists(final)
            if os.path.isdir(final):
                raise UploadRefused(409, "a folder has that name")
            os.replace(self.temp_path, final)
            return existed
        try:
            os.link(self.temp_path, final)
        except FileExistsError:
            raise UploadRefused(409, "a file of that name exists (no --overwrite)") from None
        finally:
            os.unlink(self.temp_path)
        return False


_PRECONDITIONS = (b"if-match", b"if-none-match", b"if-unmodified-since")


def _precondition_failed(fs_path: str, headers: Headers) -> bool:
    """RFC 9110 13.1.1-13.1.4 for a PUT: ``If-Match`` fails without a current file or
    without a strong match, ``If-None-Match`` fails when one matches (``*``: when the
    file exists), ``If-Unmodified-Since`` when it changed since. They are checked when
    the request arrives; the commit at the end of the body checks existence again."""
    if not any(name in _PRECONDITIONS for name, _ in headers):
        return False
    try:
        st = os.stat(fs_path)
    except OSError:
        return headers.get(b"if-match") is not None  # 13.1.1: no current representation
    etag = make_etag(st.st_size, st.st_mtime_ns)  # as downloads show it
    return evaluate(b"PUT", headers, etag, int(st.st_mtime)) == 412


class Uploads:
    """The upload side of a ``StaticFiles`` application."""

    def __init__(self, files: StaticFiles) -> None:
        self.files = files

    # ---------------------------------------------------------------------- PUT

    def put(self, exchange: Exchange, raw: bytes) -> None:
        files = self.files
        mapped = files.map(exchange, raw)
        if mapped is None:
            return
        fs_path, segments, slash = mapped
        if slash or not segments:
            files.error(exchange, 405, "a folder cannot be PUT")
            return
        if _precondition_failed(fs_path, exchange.request.headers):
            files.error(exchange, 412)
            return
        try:
            pending = self._start(os.path.dirname(fs_path), segments[-1])
        except UploadRefused as refused:
            files.error(exchange, refused.status, refused.reason)
            return
        expected = exchange.request.content_length

        def finish() -> None:
            if expected is not None and pending.size != expected:
                pending.discard()
                files.error(exchange, 400, "the body is not as long as its Content-Length")
                return
            try:
                replaced = pending.commit(files.overwrite)
            except UploadRefused as refused:
                files.error(exchange, refused.status, refused.reason)
                return
            except OSError as error:
                self._failed(exchange, [pending], error)
                return
            files.files.clear()  # the cache must not answer with what was there before
            log.info("stored %s (%d bytes)", "/".join(segments), pending.size)
            if replaced:
                exchange.respond(204, [])
            else:
                location = files.url(segments).encode("ascii")
                exchange.respond(201, [(b"location", location), _TEXT], b"201 Created\n")

        def on_data(data: bytes) -> None:
            try:
                pending.write(data)
            except OSError as error:
                self._failed(exchange, [pending], error)

        if exchange.body is not None:
            on_data(exchange.body)
            if not exchange.finished:
                finish()
            return
        assert exchange.stream is not None
        exchange.stream.set_callbacks(on_data, finish, pending.discard)

    def _start(self, folder: str, name: str) -> PendingFile:
        """A temporary file for ``name`` in ``folder``; raises UploadRefused."""
        if sanitize_filename(name) != name:
            raise UploadRefused(400, "that file name cannot be stored")
        if not os.path.isdir(folder):
            raise UploadRefused(409, "the folder does not exist")
        final = os.path.join(folder, name)
        if os.path.isdir(final):
            raise UploadRefused(409, "a folder has that name")
        if not self.files.overwrite and os.path.lexists(final):
            raise UploadRefused(409, "a file of that name exists (no --overwrite)")
        try:
            return PendingFile(folder, name)
        except PermissionError:
            raise UploadRefused(403, "the folder cannot be written to") from None
        except OSError as error:
            log.warning("cannot create an upload in %s: %s", folder, error.strerror)
            raise UploadRefused(500, "the file could not be stored") from None

    def _failed(self, exchange: Exchange, pending: list[PendingFile], error: OSError) -> None:
        for item in pending:
            item.discard()
        log.warning("upload failed: %s", error.strerror or error)
        self.files.error(exchange, 500, "the file could not be stored")

    # --------------------------------------------------------------------- POST

    def post_form(self, exchange: Exchange, raw: bytes) -> None:
        files = self.files
        mapped = files.map(exchange, raw)
        if mapped is None:
            return
        fs_path, segments, slash = mapped
        if not os.path.isdir(fs_path):
            files.error(exchange, 404 if not os.path.exists(fs_path) else 405)
            return
        try:
            boundary = boundary_from_content_type(
                exchange.request.headers.get(b"content-type") or b""
            )
        except MultipartError as error:
            files.error(exchange, 400, f"expected a multipart/form-data body: {error}")
            return
        form = _FormUpload(self, exchange, fs_path, segments, MultipartParser(boundary))
        if exchange.body is not None:
            form.on_data(exchange.body)
            form.on_end()
            return
        assert exchange.stream is not None
        exchange.stream.set_callbacks(form.on_data, form.on_end, form.discard)


class _FormUpload:
    """One multipart/form-data POST: its parser, the files written so far."""

    def __init__(
        self,
        uploads: Uploads,
        exchange: Exchange,
        folder: str,
        segments: tuple[str, ...],
        parser: MultipartParser,
    ) -> None:
        self.uploads = uploads
        self.exchange = exchange
        self.folder = folder
        self.segments = segments
        self.parser = parser
        self.current: PendingFile | None = None
        self.skipping = False  # a part that is not a file (a plain form field)
        self.done: list[PendingFile] = []
        self.names: set[str] = set()
        self.failed = False

    def discard(self) -> None:
        for item in [*self.done, *([self.current] if self.current else [])]:
            item.discard()
        self.done.clear()
        self.current = None

    def refuse(self, status: int, reason: str) -> None:
        self.failed = True
        self.discard()
        self.uploads.files.error(self.exchange, status, reason)

    def on_data(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            events = self.parser.feed(data)
        except MultipartError as error:
            self.refuse(400, f"malformed multipart body: {error}")
            return
        try:
            for event in events:
                self._handle(event)
                if self.failed:
                    return
        except OSError as error:
            self.failed = True
            self.uploads._failed(self.exchange, [*self.done, *filter(None, [self.current])], error)

    def _handle(self, event: PartStart | PartData | PartEnd | MultipartEnd) -> None:
        if type(event) is PartData:
            if self.current is not None:
                self.current.write(event.data)
        elif type(event) is PartStart:
            if not event.filename:  # a plain field, or a file input left empty
                self.skipping = True
                return
            name = sanitize_filename(event.filename)
            if name is None:
                self.refuse(400, "an uploaded file name cannot be stored")
                return
            if name in self.names:
                self.refuse(400, "two uploaded files have the same name")
                return
            self.names.add(name)
            try:
                self.current = self.uploads._start(self.folder, name)
            except UploadRefused as refused:
                self.refuse(refused.status, refused.reason)
        elif type(event) is PartEnd:
            if self.current is not None:
                self.current.close()
                self.done.append(self.current)
                self.current = None
            self.skipping = False

    def on_end(self) -> None:
        if self.failed:
            return
        try:
            self.parser.close()
        except MultipartError as error:
            self.refuse(400, f"malformed multipart body: {error}")
            return
        if not self.done:
            self.refuse(400, "the form held no file")
            return
        files = self.uploads.files
        committed = []
        try:
            for item in self.done:
                item.commit(files.overwrite)
                committed.append(item.name)
        except UploadRefused as refused:
            for item in self.done[len(committed) :]:
                item.discard()
            self.failed = True
            files.error(self.exchange, refused.status, refused.reason)
            return
        except OSError as error:
            self.failed = True
            self.uploads._failed(self.exchange, self.done[len(committed) :], error)
            return
        files.files.clear()  # the cache must not answer with what was there before
        for name in committed:
            log.info("stored %s", "/".join([*self.segments, name]))
        location = files.url(self.segments, folder=True).encode("ascii")
        self.exchange.respond(
            303,
            [(b"location", location), _TEXT],
            b"303 See Other\n" + quote(", ".join(committed)).encode("ascii") + b"\n",
        )
