"""The Content-Type of a file we serve, from its name.

The standard library's ``mimetypes`` knows the long tail of types, but its module-level
functions also read the machine's ``/etc/mime.types`` (and the Windows registry), so the
same file would be labelled differently on two hosts, and its built-in table changes
between Python versions (``.js`` became ``text/javascript`` only in 3.12; ``.webp`` and
``.woff2`` are missing from 3.10). So the answer comes from, in order:

1. our own table of the types a web site is made of, pinned here so that every host and
   every Python gives the same answer for them;
2. a private ``mimetypes.MimeTypes()`` instance, which holds Python's built-in table only
   (an instance does not copy what the module read from the system files);
3. ``application/octet-stream``, the type RFC 9110 8.3 names for data of unknown type.

Only the last extension counts, and ``mimetypes``' encoding suffixes are not applied: a
request for ``app.js.gz`` asks for a gzip file, and gets ``application/gzip`` with no
Content-Encoding (serving a precompressed ``.gz`` in place of ``app.js`` is the
negotiation's business, which then asks us about ``app.js``).

Choices worth knowing: ``.ts`` is ``video/mp2t`` (its IANA registration, and what HLS
streams are made of; TypeScript sources are rarely served to browsers), ``.ico`` is the
registered ``image/vnd.microsoft.icon``, ``.br`` is ``application/x-brotli`` (brotli has no
registered media type of its own). Text types, and the JSON, XML and JavaScript types
that are text in all but name, get ``; charset=utf-8``: a static server cannot know a
file's charset, and UTF-8 is what a site written today is in.

Answers are cached per extension, since this runs per request.
"""

from __future__ import annotations

import mimetypes

DEFAULT_TYPE = b"application/octet-stream"

_UTF8 = "; charset=utf-8"

# Pinned here: identical on every host and every Python. Keys are lower-case extensions.
_OWN_TYPES = {
    # documents and code
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "application/xhtml+xml",
    ".css": "text/css",
    ".js": "text/javascript",  # RFC 9239 3: text/javascript, also for modules
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",  # source maps
    ".jsonld": "application/ld+json",
    ".webmanifest": "application/manifest+json",
    ".xml": "application/xml",  # RFC 7303 4.1 prefers it to text/xml
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".txt": "text/plain",
    ".md": "text/markdown",  # RFC 7763
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".vtt": "text/vtt",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    # images
    ".png": "image/png",
    ".apng": "image/apng",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
    ".ico": "image/vnd.microsoft.icon",
    ".bmp": "image/bmp",
    # fonts (RFC 8081)
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    # audio and video
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".ogv": "video/ogg",
    ".mov": "video/quicktime",
    ".ts": "video/mp2t",
    ".m3u8": "application/vnd.apple.mpegurl",
    # archives and compressed files, asked for by their own name
    ".zip": "application/zip",
    ".tar": "application/x-tar",
    ".gz": "application/gzip",  # RFC 6713
    ".tgz": "application/gzip",
    ".br": "application/x-brotli",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",  # RFC 8878
    ".7z": "application/x-7z-compressed",
}

# Application types that are text and get a charset like text/* does.
_TEXT_APPLICATION_TYPES = frozenset(
    ["application/javascript", "application/json", "application/xml"]
)

# Extensions are file names' business, but a request can name any file: bound the cache.
_MAX_CACHED = 1024

_cache: dict[str, bytes] = {}
_stdlib_types: mimetypes.MimeTypes | None = None


def content_type(filename: str) -> bytes:
    """The Content-Type field value for ``filename`` (a name or a path), as bytes.

    Only the last extension counts, compared without regard to case; a name without one
    (``README``, ``.env``, ``file.``) is ``application/octet-stream``, as is any
    extension nobody knows. Never raises for a ``str``.
    """
    base = filename[max(filename.rfind("/"), filename.rfind("\\")) + 1 :]
    dot = base.rfind(".")
    if dot <= 0:  # no dot, or only the one that makes a dot-file
        return DEFAULT_TYPE
    extension = base[dot:].lower()
    cached = _cache.get(extension)
    if cached is not None:
        return cached
    found = _lookup(extension)
    if len(_cache) < _MAX_CACHED:
        _cache[extension] = found
    return found


def _lookup(extension: str) -> bytes:
    """The field value for a lower-case ``extension`` (with its dot), uncached."""
    global _stdlib_types
    media_type = _OWN_TYPES.get(extension)
    if media_type is None:
        if _stdlib_types is None:
            _stdlib_types = mimetypes.MimeTypes()
        strict_map, common_map = _stdlib_types.types_map[1], _stdlib_types.types_map[0]
        media_type = strict_map.get(extension) or common_map.get(extension)
        if media_type is None:
            return DEFAULT_TYPE
    if _is_text(media_type):
        media_type += _UTF8
    return media_type.encode("ascii")


def _is_text(media_type: str) -> bool:
    """Whether ``media_type`` is text that we label as UTF-8."""
    return (
        media_type.startswith("text/")
        or media_type in _TEXT_APPLICATION_TYPES
        or media_type.endswith(("+xml", "+json"))
    )
