"""The static file application: a folder over HTTP, downloads by default, uploads on request.

``StaticFiles`` is an application like the native one: it receives an ``Exchange`` and
answers through it. A request's path decides what it gets:

- a regular file: 200 with its bytes (from memory when small, else a ``FileSegment``
  that the server sends with ``sendfile``), or 304/412 by its validators, or 206/416
  for ranges (``multipart/byteranges`` for several), with a precompressed variant
  (``.br``, ``.gz``) when the client accepts it;
- a folder without its trailing slash: 301 to the slashed URL, query kept;
- a folder: its ``index.html``, else a listing (``--no-listing``: 404);
- anything else, or anything the path rules refuse: 404 (400 for a malformed path).

Only GET and HEAD are served; with ``--upload``, PUT stores a file and POST of a
listing's form stores several (``uploads.py``); other methods get 405 with ``Allow``.

Nothing in a response names the served folder's place on disk: error bodies are fixed
phrases, listings and Locations are built from the URL's own segments.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

from ...http import reason_phrase
from ...server import BodyPiece, Exchange, FileSegment
from .conditions import evaluate, if_range_allows
from .files import FileCache, NotAFileError, OpenFile
from .listing import Entry, render_listing
from .negotiation import choose_encoding
from .paths import PathRefused, SymlinkPolicy, is_servable_name, map_path
from .ranges import UNSATISFIABLE, content_range, multipart_ranges, parse_range, unsatisfied_range
from .uploads import Uploads

if TYPE_CHECKING:
    from ...config import Settings

_GET, _HEAD, _PUT, _POST = b"GET", b"HEAD", b"PUT", b"POST"
_TEXT = b"text/plain; charset=utf-8"
_HTML = b"text/html; charset=utf-8"
_NOSNIFF = (b"x-content-type-options", b"nosniff")
# Fields whose presence makes a request conditional or ranged: the common request has
# none, and is answered without parsing any.
_CONDITIONAL_FIELDS = frozenset(
    {b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since", b"range"}
)


class StaticFiles:
    """Serves the folder ``root`` under the URL ``prefix`` (``""``: the whole site)."""

    def __init__(self, root: str, settings: Settings, prefix: str = "") -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ValueError(f"{root!r} is not a folder")
        self.root = real
        self.prefix = prefix.rstrip("/")
        self._prefix_bytes = quote(self.prefix).encode("ascii")
        self.listing: bool = settings.listing
        self.upload: bool = settings.upload
        self.overwrite: bool = settings.overwrite
        self.dotfiles: bool = settings.dotfiles
        self.symlinks: SymlinkPolicy = settings.symlinks
        base_fields = [(b"accept-ranges", b"bytes"), _NOSNIFF]
        if settings.cache_control:
            base_fields.append((b"cache-control", settings.cache_control.encode("latin-1")))
        self.files = FileCache(base_fields, settings.file_cache_entries, settings.file_cache_valid)
        self.allow = b"GET, HEAD, PUT, POST" if self.upload else b"GET, HEAD"
        self.uploads: Uploads | None = Uploads(self) if self.upload else None

    def close(self) -> None:
        """Close the cached files (the server calls this when it closes)."""
        self.files.clear()

    # ------------------------------------------------------------------ dispatch

    def __call__(self, exchange: Exchange) -> None:
        request = exchange.request
        method = request.method
        raw = request.path[len(self._prefix_bytes) :] if self._prefix_bytes else request.path
        if not raw.startswith(b"/"):
            if raw:
                self.error(exchange, 404)
            else:  # the mount point itself: /assets -> /assets/
                self.redirect(exchange, (), request.query)
            return
        if method in (_GET, _HEAD):
            self.get(exchange, raw)
        elif self.uploads is not None and method == _PUT:
            self.uploads.put(exchange, raw)
        elif self.uploads is not None and method == _POST:
            self.uploads.post_form(exchange, raw)
        else:
            exchange.respond(
                405,
                [(b"allow", self.allow), (b"content-type", _TEXT), _NOSNIFF],
                b"405 Method Not Allowed\n",
            )

    def map(self, exchange: Exchange, raw: bytes) -> tuple[str, tuple[str, ...], bool] | None:
        """``(fs_path, segments, trailing_slash)`` of a raw path, or None once the
        request was answered with the reason the path rules refused it (400 or 404)."""
        try:
            mapped = map_path(self.root, raw, allow_dotfiles=self.dotfiles, symlinks=self.symlinks)
        except PathRefused as refused:
            self.error(exchange, refused.status, refused.reason)
            return None
        return mapped.fs_path, mapped.segments, mapped.trailing_slash

    def url(self, segments: tuple[str, ...], folder: bool = False) -> str:
        """The percent-encoded URL path of ``segments`` under the prefix."""
        path = self.prefix + "/" + "/".join(quote(segment, safe="") for segment in segments)
        if folder and not path.endswith("/"):
            path += "/"
        return path

    # ---------------------------------------------------------------- downloads

    def get(self, exchange: Exchange, raw: bytes) -> None:
        entry = self.files.get(raw)
        if entry is None:
            mapped = self.map(exchange, raw)
            if mapped is None:
                return
            fs_path, segments, slash = mapped
            try:
                st = os.stat(fs_path)
            except PermissionError:
                self.error(exchange, 403)
                return
            except (OSError, ValueError):
                self.error(exchange, 404)
                return
            if stat.S_ISDIR(st.st_mode):
                if not slash:
                    self.redirect(exchange, segments, exchange.request.query)
                    return
                index = os.path.join(fs_path, "index.html")
                if os.path.isfile(index) and self._link_allowed(index):
                    entry = self._load(exchange, raw, index)
                    if entry is None:
                        return
                elif self.listing:
                    self.send_listing(exchange, fs_path, segments)
                    return
                else:
                    self.error(exchange, 404)
                    return
            elif slash or not stat.S_ISREG(st.st_mode):
                self.error(exchange, 404)  # a FIFO or a device is never opened
                return
            else:
                entry = self._load(exchange, raw, fs_path)
                if entry is None:
                    return
        self.send_file(exchange, entry)

    def _link_allowed(self, path: str) -> bool:
        """Whether a name found inside a mapped folder may be followed if it is a link."""
        if self.symlinks == "all" or not os.path.islink(path):
            return True
        return self.symlinks == "inside" and _inside(self.root, os.path.realpath(path))

    def _load(self, exchange: Exchange, raw: bytes, fs_path: str) -> OpenFile | None:
        try:
            return self.files.load(raw, fs_path)
        except PermissionError:
            self.error(exchange, 403)
        except (OSError, NotAFileError):
            self.error(exchange, 404)
        return None

    def send_file(self, exchange: Exchange, entry: OpenFile) -> None:
        request = exchange.request
        headers = request.headers
        if entry.variants:
            coding = choose_encoding(headers.get(b"accept-encoding"), tuple(entry.variants))
            if coding is not None:
                entry = entry.variants[coding]
        fields = entry.fields
        for name, _ in headers:
            if name in _CONDITIONAL_FIELDS:
                break
        else:  # the common request: neither conditional nor ranged
            self._send_whole(exchange, entry, fields)
            return
        now_s = int(time.time())
        status = evaluate(request.method, headers, entry.etag, entry.mtime_s, now_s=now_s)
        if status == 304:
            exchange.respond(304, [f for f in fields if f[0] != b"content-type"], b"")
            return
        if status == 412:
            self.error(exchange, 412, extra=_vary_of(fields))
            return
        value = headers.get(b"range")
        if (
            value is None
            or request.method != _GET  # RFC 9110 14.2: Range is for GET only
            or not if_range_allows(headers, entry.etag, entry.mtime_s, now_s=now_s)
        ):
            self._send_whole(exchange, entry, fields)
            return
        ranges = parse_range(value, entry.size)
        if ranges is None:
            self._send_whole(exchange, entry, fields)
        elif ranges is UNSATISFIABLE:
            exchange.respond(
                416,
                [(b"content-range", unsatisfied_range(entry.size)), (b"content-type", _TEXT),
                 _NOSNIFF, *_vary_of(fields)],
                b"416 Range Not Satisfiable\n",
            )  # fmt: skip
        elif len(ranges) == 1:
            start, stop = ranges[0]
            fields = [*fields, (b"content-range", content_range(start, stop, entry.size))]
            self._send_part(exchange, 206, entry, fields, start, stop)
        else:
            self._send_multipart(exchange, entry, fields, ranges)

    def _send_whole(
        self, exchange: Exchange, entry: OpenFile, fields: list[tuple[bytes, bytes]]
    ) -> None:
        if entry.content is not None:
            exchange.respond(200, entry.prepared or fields, entry.content)
        else:
            self._send_part(exchange, 200, entry, fields, 0, entry.size)

    def _send_part(
        self,
        exchange: Exchange,
        status: int,
        entry: OpenFile,
        fields: list[tuple[bytes, bytes]],
        start: int,
        stop: int,
    ) -> None:
        if entry.content is not None:
            exchange.respond(status, fields, entry.content[start:stop])
            return
        release = self.files.acquire(entry)
        segment = FileSegment(entry.fd, start, stop - start, release)
        fields = [*fields, (b"content-length", b"%d" % (stop - start))]
        exchange.respond_iterable(status, fields, (segment,))

    def _send_multipart(
        self,
        exchange: Exchange,
        entry: OpenFile,
        fields: list[tuple[bytes, bytes]],
        ranges: list[tuple[int, int]],
    ) -> None:
        media_type = fields[0][1]
        framing = multipart_ranges(ranges, entry.size, media_type, secrets.token_hex(12).encode())
        body: list[BodyPiece] = []
        for head, start, stop in framing.parts:
            body.append(head)
            if entry.content is not None:
                body.append(entry.content[start:stop])
            else:
                body.append(FileSegment(entry.fd, start, stop - start, self.files.acquire(entry)))
        body.append(framing.closing)
        out = [(b"content-type", framing.content_type)]
        out += [f for f in fields if f[0] != b"content-type"]
        out.append((b"content-length", b"%d" % framing.content_length))
        exchange.respond_iterable(206, out, body)

    # ------------------------------------------------------------------ folders

    def send_listing(self, exchange: Exchange, fs_path: str, segments: tuple[str, ...]) -> None:
        entries = []
        try:
            with os.scandir(fs_path) as scan:
                for item in scan:
                    if item.name.startswith(".") and not self.dotfiles:
                        continue
                    if not is_servable_name(item.name):
                        continue  # no URL could ask for it: no link that cannot work
                    try:
                        if item.is_symlink() and not self._link_allowed(item.path):
                            continue
                        st = item.stat()
                    except OSError:
                        continue  # a broken link, or gone meanwhile
                    is_dir = stat.S_ISDIR(st.st_mode)
                    if not is_dir and not stat.S_ISREG(st.st_mode):
                        continue
                    entries.append(Entry(item.name, is_dir, st.st_size, st.st_mtime))
        except PermissionError:
            self.error(exchange, 403)
            return
        except OSError:
            self.error(exchange, 404)
            return
        shown = self.prefix + "/" + "".join(segment + "/" for segment in segments)
        page = render_listing(shown, entries, upload_form=self.upload)
        exchange.respond(200, [(b"content-type", _HTML), _NOSNIFF], page)

    # ------------------------------------------------------------------ answers

    def redirect(self, exchange: Exchange, segments: tuple[str, ...], query: bytes) -> None:
        # Built from the decoded segments, never from the raw path: "//evil.example"
        # must not become a Location that leaves this site.
        location = self.url(segments, folder=True).encode("ascii")
        if query:
            location += b"?" + query
        exchange.respond(
            301,
            [(b"location", location), (b"content-type", _TEXT), _NOSNIFF],
            b"301 Moved Permanently\n",
        )

    def error(
        self,
        exchange: Exchange,
        status: int,
        reason: str = "",
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        text = f"{status} {reason_phrase(status)}\n"
        if reason:
            text += reason + "\n"
        fields = [(b"content-type", _TEXT), _NOSNIFF]
        if extra:
            fields += extra
        exchange.respond(status, fields, text.encode())


def _vary_of(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The Vary field among a file's fields: an error that depends on the variant
    chosen must say so too."""
    return [field for field in fields if field[0] == b"vary"]


def _inside(root: str, real_path: str) -> bool:
    return real_path == root or real_path.startswith(root.rstrip("/") + "/")
