"""Content-Type from a file name: the pinned web types, the stdlib's tail, the defaults."""

from __future__ import annotations

import mimetypes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treadle.apps.static import content_types
from treadle.apps.static.content_types import DEFAULT_TYPE, content_type

UTF8 = b"; charset=utf-8"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        # text gets a charset
        ("index.html", b"text/html" + UTF8),
        ("page.htm", b"text/html" + UTF8),
        ("style.css", b"text/css" + UTF8),
        ("app.js", b"text/javascript" + UTF8),
        ("module.mjs", b"text/javascript" + UTF8),
        ("notes.txt", b"text/plain" + UTF8),
        ("README.md", b"text/markdown" + UTF8),
        ("table.csv", b"text/csv" + UTF8),
        ("data.json", b"application/json" + UTF8),
        ("app.js.map", b"application/json" + UTF8),
        ("feed.xml", b"application/xml" + UTF8),
        ("feed.rss", b"application/rss+xml" + UTF8),
        ("site.webmanifest", b"application/manifest+json" + UTF8),
        ("logo.svg", b"image/svg+xml" + UTF8),
        ("page.xhtml", b"application/xhtml+xml" + UTF8),
        # binary types do not
        ("module.wasm", b"application/wasm"),
        ("photo.webp", b"image/webp"),
        ("photo.avif", b"image/avif"),
        ("photo.jpg", b"image/jpeg"),
        ("photo.jpeg", b"image/jpeg"),
        ("icon.png", b"image/png"),
        ("favicon.ico", b"image/vnd.microsoft.icon"),
        ("font.woff", b"font/woff"),
        ("font.woff2", b"font/woff2"),
        ("segment.ts", b"video/mp2t"),
        ("movie.mp4", b"video/mp4"),
        ("paper.pdf", b"application/pdf"),
        # upper and mixed case extensions
        ("INDEX.HTML", b"text/html" + UTF8),
        ("Photo.JPG", b"image/jpeg"),
        ("App.Js", b"text/javascript" + UTF8),
        ("FONT.WOFF2", b"font/woff2"),
        # compressed files asked for by name are what they are: no Content-Encoding here
        ("app.js.gz", b"application/gzip"),
        ("archive.tar.gz", b"application/gzip"),
        ("archive.tgz", b"application/gzip"),
        ("app.js.br", b"application/x-brotli"),
        ("archive.tar.xz", b"application/x-xz"),
        ("archive.tar.zst", b"application/zstd"),
        ("archive.tar", b"application/x-tar"),
        ("bundle.zip", b"application/zip"),
        # the last extension decides
        (".eslintrc.json", b"application/json" + UTF8),
        ("report.pdf.txt", b"text/plain" + UTF8),
        ("v1.2.3.tar", b"application/x-tar"),
        # no extension, dot-files, odd names
        ("README", DEFAULT_TYPE),
        ("Makefile", DEFAULT_TYPE),
        (".env", DEFAULT_TYPE),
        (".htaccess", DEFAULT_TYPE),
        ("file.", DEFAULT_TYPE),
        ("...", DEFAULT_TYPE),
        ("", DEFAULT_TYPE),
        (".", DEFAULT_TYPE),
        ("archive.unknownext", DEFAULT_TYPE),
        ("weird.j s", DEFAULT_TYPE),
        # paths: only the last name counts
        ("/srv/site/assets/app.js", b"text/javascript" + UTF8),
        ("/srv/site.d/README", DEFAULT_TYPE),
        ("/srv/.hidden/page.html", b"text/html" + UTF8),
        ("C:\\site.d\\README", DEFAULT_TYPE),
        # the long tail comes from Python's own table
        ("script.py", b"text/x-python" + UTF8),
        ("clip.mov", b"video/quicktime"),
    ],
)
def test_content_type(filename: str, expected: bytes) -> None:
    assert content_type(filename) == expected
    assert content_type(filename) == expected  # the cached answer is the same


def test_the_cache_is_keyed_by_lower_case_extension() -> None:
    content_type("a.HTML")
    content_type("b.html")
    assert content_types._cache[".html"] == b"text/html" + UTF8
    assert ".HTML" not in content_types._cache


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content_types, "_cache", {})
    for n in range(content_types._MAX_CACHED + 50):
        assert content_type(f"file.x{n}") == DEFAULT_TYPE
    assert len(content_types._cache) == content_types._MAX_CACHED


def test_the_machine_s_mime_types_file_is_not_consulted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Teach the module-level tables a type, as a system mime.types file would.
    monkeypatch.setattr(content_types, "_cache", {})
    monkeypatch.setattr(content_types, "_stdlib_types", None)
    mimetypes.add_type("application/x-treadle-test", ".treadletest")
    try:
        assert mimetypes.guess_type("a.treadletest")[0] == "application/x-treadle-test"
        assert content_type("a.treadletest") == DEFAULT_TYPE
    finally:
        mimetypes.types_map.pop(".treadletest", None)


@pytest.mark.parametrize(
    ("media_type", "is_text"),
    [
        ("text/plain", True),
        ("application/json", True),
        ("application/ld+json", True),
        ("application/atom+xml", True),
        ("image/svg+xml", True),
        ("application/octet-stream", False),
        ("image/png", False),
        ("application/wasm", False),
    ],
)
def test_which_types_get_a_charset(media_type: str, is_text: bool) -> None:
    assert content_types._is_text(media_type) is is_text


@given(st.text(max_size=30))
def test_any_name_gets_one_ascii_field_value(filename: str) -> None:
    value = content_type(filename)
    assert value.isascii()
    assert b"/" in value and b"\r" not in value and b"\n" not in value
