"""``treadle serve DIR`` and ``--static PREFIX=DIR`` over real sockets, as clients meet them.

One tree (static_helpers.build_site) is served by one server per poller for the
read-only tests: downloads small and large, HEAD, every precondition, ranges with
multipart bodies read by the standard library's MIME parser, listings of awkward
names followed link by link, redirects, the traversal suite sent raw (clients would
normalise it), precompressed variants, methods and types. Uploads, ``--no-listing``,
``--max-body-bytes`` and ``--static`` get servers of their own on one poller, since
the poller changes nothing there that the shared servers do not already cover.

Every response any test receives is checked by ``RESPONSES`` for the absolute path of
the test run's folders and for the secret kept beside the served root.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest

from .helpers import (
    POLLERS,
    HTTPResponse,
    RawConnection,
    ServerProcess,
    chunked,
    requires_curl,
    wait_until,
)
from .static_helpers import (
    AWKWARD_FOLDERS,
    AWKWARD_NAMES,
    CACHE_CONTROL,
    MTIME_S,
    ODD_NAMES,
    RESPONSES,
    Site,
    build_site,
    curl,
    fetch,
    http,
    page_links,
    parse_byteranges,
    part_files,
    random_bytes,
    read_checked,
    split_curl_head,
)

STATIC_POLLERS = [name for name in ("epoll", "poll") if name in POLLERS] or POLLERS[:1]
#: the poller of the servers whose tests do not depend on one
ONE_POLLER = STATIC_POLLERS[0]
DAY_S = 86400
#: the upload server's --body-timeout: how long the stalled-upload test waits
BODY_TIMEOUT_S = 2.0
TEXT_PLAIN = "text/plain; charset=utf-8"


def http_date(epoch_s: float) -> str:
    return email.utils.formatdate(epoch_s, usegmt=True)


LAST_MODIFIED = http_date(MTIME_S)


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _forbid_run_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No response may name the folders of this test run (every served root is inside)."""
    base = tmp_path_factory.getbasetemp()
    RESPONSES.forbid(os.fsencode(base), os.fsencode(os.path.realpath(base)))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    built = build_site(tmp_path_factory.mktemp("static"))
    RESPONSES.forbid(built.secret, os.fsencode(built.root))
    return built


@pytest.fixture(scope="module", params=STATIC_POLLERS)
def served(request: pytest.FixtureRequest, site: Site) -> Iterator[ServerProcess]:
    """``treadle serve ROOT --cache-control ...`` on one poller; alive and exit 0 at the end."""
    process = ServerProcess(
        ["--cache-control", CACHE_CONTROL], serve=site.root, poller=str(request.param)
    ).wait_listening()
    try:
        yield process
        assert process.alive(), f"the server died:\n{process.tail()}"
    finally:
        status = process.stop()
    assert status == 0, f"server exited with {status}"


def without_date(response: HTTPResponse) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers if name != "date"]


def validators(server: ServerProcess, target: str) -> tuple[str, str]:
    """The ETag and Last-Modified of ``target``."""
    response = fetch(server, target, method="HEAD")
    assert response.status == 200, response
    etag, last_modified = response.header("etag"), response.header("last-modified")
    assert etag is not None and last_modified is not None
    return etag, last_modified


# ---------------------------------------------------------------------- downloads


@pytest.mark.parametrize("name", ["empty.txt", "small.txt", "large.bin", "link-in"])
def test_download_is_the_file_byte_for_byte(served: ServerProcess, site: Site, name: str) -> None:
    expected = site.small if name == "link-in" else site.files[name]
    response = http("GET", f"{served.url}/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(expected))
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(expected).digest()
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Last-Modified"] == LAST_MODIFIED
    assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == CACHE_CONTROL


def test_large_file_on_one_connection_twice_then_a_small_one(
    served: ServerProcess, site: Site
) -> None:
    with served.connect() as conn:
        for _ in range(2):
            response = fetch(served, "/large.bin", conn=conn)
            assert response.status == 200 and response.framing == "length"
            assert hashlib.sha256(response.body).hexdigest() == site.large_sha256
        assert fetch(served, "/small.txt", conn=conn).body == site.small


@pytest.mark.parametrize(
    "target", ["/sm%61ll.txt", "/small.txt?v=2", "//small.txt", "/sub/../small.txt"]
)
def test_other_spellings_of_a_path(served: ServerProcess, site: Site, target: str) -> None:
    response = fetch(served, target)
    if target == "/sub/../small.txt":  # dot-segments are refused, never resolved
        assert response.status in (400, 404)
    else:
        assert response.status == 200 and response.body == site.small


def test_names_are_decoded_once(served: ServerProcess, site: Site) -> None:
    assert fetch(served, "/names/%2541.txt").body == site.files["names/%41.txt"]
    assert fetch(served, "/names/%41.txt").body == site.files["names/A.txt"]
    assert fetch(served, "/names/%C3%A9t%C3%A9.txt").body == site.files["names/été.txt"]
    decomposed = quote("e\u0301te\u0301.txt")
    assert fetch(served, f"/names/{decomposed}").body == "e\u0301te\u0301.txt\n".encode()


@requires_curl
def test_curl_downloads_the_large_file(served: ServerProcess, site: Site) -> None:
    result = curl("--fail", f"{served.url}/large.bin")
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).hexdigest() == site.large_sha256


@pytest.mark.parametrize(
    "name", ["empty.txt", "small.txt", "large.bin", "enc/file.txt", "names/", "index-site/"]
)
def test_head_has_the_headers_of_get_and_no_body(
    served: ServerProcess, site: Site, name: str
) -> None:
    with served.connect() as conn:
        get = fetch(served, f"/{name}", conn=conn)
        head = fetch(served, f"/{name}", method="HEAD", conn=conn)
        # had the HEAD carried a body, it would be read here as the next status line
        after = fetch(served, "/small.txt", conn=conn)
    assert head.status == get.status == 200
    assert without_date(head) == without_date(get)
    assert head.header("content-length") == str(len(get.body))
    if name in site.files:
        assert get.body == site.files[name]
    assert after.status == 200 and after.body == site.small


# -------------------------------------------------------------------- conditionals

#: name -> (request fields, expected status); {etag} {lm} {later} {earlier} {future}
#: are filled from the file's validators
CONDITIONS: dict[str, tuple[list[tuple[str, str]], int]] = {
    "inm-match": ([("If-None-Match", "{etag}")], 304),
    "inm-weak-form": ([("If-None-Match", "W/{etag}")], 304),
    "inm-star": ([("If-None-Match", "*")], 304),
    "inm-list": ([("If-None-Match", '"nope", {etag}, "other"')], 304),
    "inm-two-lines": ([("If-None-Match", '"nope"'), ("If-None-Match", "{etag}")], 304),
    "inm-other": ([("If-None-Match", '"nope"')], 200),
    "inm-list-other": ([("If-None-Match", '"nope", W/"other"')], 200),
    "ims-equal": ([("If-Modified-Since", "{lm}")], 304),
    "ims-later": ([("If-Modified-Since", "{later}")], 304),
    # RFC 9110 13.1.3 no longer calls a future date invalid: not modified since then
    "ims-future": ([("If-Modified-Since", "{future}")], 304),
    "ims-earlier": ([("If-Modified-Since", "{earlier}")], 200),
    "ims-invalid": ([("If-Modified-Since", "yesterday, about noon")], 200),
    "ims-bad-day": ([("If-Modified-Since", "Wed, 32 Foo 2023 99:00:00 GMT")], 200),
    "im-match": ([("If-Match", "{etag}")], 200),
    "im-star": ([("If-Match", "*")], 200),
    "im-list": ([("If-Match", '"nope", {etag}')], 200),
    "im-other": ([("If-Match", '"nope"')], 412),
    "im-weak-never-matches": ([("If-Match", "W/{etag}")], 412),
    "ius-equal": ([("If-Unmodified-Since", "{lm}")], 200),
    "ius-later": ([("If-Unmodified-Since", "{later}")], 200),
    "ius-earlier": ([("If-Unmodified-Since", "{earlier}")], 412),
    "ius-invalid-ignored": ([("If-Unmodified-Since", "not a date")], 200),
    "inm-beats-ims": ([("If-None-Match", '"nope"'), ("If-Modified-Since", "{lm}")], 200),
    "inm-match-beats-old-ims": (
        [("If-None-Match", "{etag}"), ("If-Modified-Since", "{earlier}")],
        304,
    ),
    "im-beats-ius": ([("If-Match", "{etag}"), ("If-Unmodified-Since", "{earlier}")], 200),
    "im-fails-despite-ius": ([("If-Match", '"nope"'), ("If-Unmodified-Since", "{later}")], 412),
    "im-before-inm": ([("If-Match", '"nope"'), ("If-None-Match", "{etag}")], 412),
}


def fill(fields: list[tuple[str, str]], etag: str) -> list[tuple[str, str]]:
    values = {
        "etag": etag,
        "lm": LAST_MODIFIED,
        "later": http_date(MTIME_S + DAY_S),
        "earlier": http_date(MTIME_S - DAY_S),
        "future": http_date(time.time() + 3650 * DAY_S),
    }
    return [(name, value.format(**values)) for name, value in fields]


@pytest.mark.parametrize("target", ["/small.txt", "/large.bin"])
@pytest.mark.parametrize("case", list(CONDITIONS))
def test_preconditions(served: ServerProcess, site: Site, case: str, target: str) -> None:
    etag, _ = validators(served, target)
    fields, expected = CONDITIONS[case]
    expected_body = site.files[target[1:]]
    with served.connect() as conn:
        response = fetch(served, target, fill(fields, etag), conn=conn)
        after = fetch(served, "/small.txt", conn=conn)  # proves a 304 sent no body
    assert response.status == expected, (case, response.headers)
    if expected == 304:
        assert response.header("etag") == etag
        assert response.header("cache-control") == CACHE_CONTROL
        assert response.header("content-length") in (None, str(len(expected_body)))
    elif expected == 200:
        assert response.body == expected_body
    else:
        assert expected_body[:64] not in response.body
    assert after.status == 200 and after.body == site.small


def test_matching_if_none_match_beats_range(served: ServerProcess) -> None:
    etag, _ = validators(served, "/large.bin")
    fields = [("If-None-Match", etag), ("Range", "bytes=0-9")]
    response = fetch(served, "/large.bin", fields)
    assert response.status == 304 and response.header("content-range") is None


def test_head_with_matching_if_none_match_is_304(served: ServerProcess) -> None:
    etag, _ = validators(served, "/small.txt")
    response = fetch(served, "/small.txt", [("If-None-Match", etag)], method="HEAD")
    assert response.status == 304 and response.header("etag") == etag


#: If-Range value -> whether the Range is honoured (206) or the whole file sent (200)
IF_RANGE = {
    "etag": ("{etag}", True),
    "other-etag": ('"nope"', False),
    "weak-etag": ("W/{etag}", False),
    "date": ("{lm}", True),
    "other-date": ("{earlier}", False),
    "later-date": ("{later}", False),
    "garbage": ("garbage", False),
}


@pytest.mark.parametrize("target", ["/small.txt", "/large.bin"])
@pytest.mark.parametrize("case", list(IF_RANGE))
def test_if_range(served: ServerProcess, site: Site, case: str, target: str) -> None:
    etag, _ = validators(served, target)
    value, honoured = IF_RANGE[case]
    data = site.files[target[1:]]
    fields = fill([("Range", "bytes=100-199"), ("If-Range", value)], etag)
    response = fetch(served, target, fields)
    if honoured:
        assert response.status == 206
        assert response.header("content-range") == f"bytes 100-199/{len(data)}"
        assert response.body == data[100:200]
    else:
        assert response.status == 200
        assert response.header("content-range") is None
        assert hashlib.sha256(response.body).digest() == hashlib.sha256(data).digest()


# -------------------------------------------------------------------------- ranges

#: name -> Range value from the size, and the (start, stop) served; None: 416
RangeCase = tuple[Callable[[int], str], Callable[[int], tuple[int, int] | None]]
RANGES: dict[str, RangeCase] = {
    "first-100": (lambda size: "bytes=0-99", lambda size: (0, 100)),
    "one-byte": (lambda size: "bytes=0-0", lambda size: (0, 1)),
    "middle": (lambda size: "bytes=1000-1999", lambda size: (1000, 2000)),
    "suffix-500": (lambda size: "bytes=-500", lambda size: (size - 500, size)),
    "open-1000": (lambda size: "bytes=1000-", lambda size: (1000, size)),
    "last-cut-at-end": (
        lambda size: f"bytes={size - 10}-{size * 3}",
        lambda size: (size - 10, size),
    ),
    "suffix-longer-than-file": (lambda size: f"bytes=-{size * 2}", lambda size: (0, size)),
    "unit-case": (lambda size: "BYTES=5-9", lambda size: (5, 10)),
    "huge-last": (lambda size: "bytes=7-" + "9" * 40, lambda size: (7, size)),
    "with-spaces": (lambda size: "bytes= 3-4 ,", lambda size: (3, 5)),
    "one-satisfiable-of-two": (lambda size: f"bytes={size + 9}-,0-9", lambda size: (0, 10)),
    "beyond-end": (lambda size: f"bytes={size}-", lambda size: None),
    "far-beyond": (lambda size: f"bytes={size + 5}-{size + 10}", lambda size: None),
}


@pytest.mark.parametrize("target", ["/small.txt", "/large.bin"])
@pytest.mark.parametrize("case", list(RANGES))
def test_single_range(served: ServerProcess, site: Site, case: str, target: str) -> None:
    data = site.files[target[1:]]
    size = len(data)
    make_value, make_span = RANGES[case]
    response = fetch(served, target, [("Range", make_value(size))])
    span = make_span(size)
    if span is None:
        assert response.status == 416
        assert response.header("content-range") == f"bytes */{size}"
        assert data[:32] not in response.body
        return
    start, stop = span
    assert response.status == 206
    assert response.header("content-range") == f"bytes {start}-{stop - 1}/{size}"
    assert response.header("content-length") == str(stop - start)
    assert response.body == data[start:stop]
    assert response.header("etag") is not None
    assert response.header("cache-control") == CACHE_CONTROL


@pytest.mark.parametrize("value", ["bytes=abc", "bytes=9-5", "items=0-9", "bytes=", "bytes=0-1;x"])
def test_malformed_range_is_ignored(served: ServerProcess, site: Site, value: str) -> None:
    response = fetch(served, "/small.txt", [("Range", value)])
    assert response.status == 200 and response.body == site.small


def test_range_on_an_empty_file_sends_it_whole(served: ServerProcess) -> None:
    response = fetch(served, "/empty.txt", [("Range", "bytes=0-10")])
    assert (response.status, response.body) == (200, b"")
    assert response.header("content-length") == "0"
    assert response.header("content-range") is None


@pytest.mark.parametrize(
    ("target", "media_type"),
    [("/small.txt", TEXT_PLAIN), ("/large.bin", "application/octet-stream")],
)
def test_several_ranges_are_multipart_byteranges(
    served: ServerProcess, site: Site, target: str, media_type: str
) -> None:
    data = site.files[target[1:]]
    size = len(data)
    spans = [(0, 10), (100, 200), (size - 50, size), (5000, 5001)]
    value = "bytes=0-9, 100-199,-50 ,5000-5000"
    response = fetch(served, target, [("Range", value)])
    assert response.status == 206
    content_type = response.header("content-type") or ""
    assert content_type.startswith("multipart/byteranges; boundary="), content_type
    assert response.header("content-range") is None
    assert response.header("content-length") == str(len(response.body))
    parts = parse_byteranges(content_type, response.body)
    assert [(part.content_range, part.data) for part in parts] == [
        (f"bytes {start}-{stop - 1}/{size}", data[start:stop]) for start, stop in spans
    ]
    assert {part.content_type for part in parts} == {media_type}


def test_too_many_ranges_get_the_whole_file(served: ServerProcess, site: Site) -> None:
    value = "bytes=" + ",".join(f"{2 * n}-{2 * n}" for n in range(50))
    response = fetch(served, "/small.txt", [("Range", value)])
    assert response.status == 200
    assert response.body == site.small


@pytest.mark.parametrize(
    "value",
    ["bytes=0-99,50-149", "bytes=500-599,0-99,50-149", "bytes=0-,0-,0-", "bytes=10-19,20-29"],
)
def test_overlapping_ranges_are_coalesced_or_whole(
    served: ServerProcess, site: Site, value: str
) -> None:
    data = site.small
    response = fetch(served, "/small.txt", [("Range", value)])
    wanted: set[int] = set()
    for member in value.removeprefix("bytes=").split(","):
        first, _, last = member.partition("-")
        wanted.update(range(int(first), int(last) + 1 if last else len(data)))
    if response.status == 200:
        assert response.body == data
        return
    assert response.status == 206
    content_type = response.header("content-type") or ""
    if content_type.startswith("multipart/byteranges"):
        parts = [
            (part.content_range, part.data)
            for part in parse_byteranges(content_type, response.body)
        ]
    else:
        parts = [(response.header("content-range") or "", response.body)]
    served_bytes: list[int] = []
    for content_range, body in parts:
        first, last = content_range.removeprefix("bytes ").split("/")[0].split("-")
        assert body == data[int(first) : int(last) + 1]
        served_bytes.extend(range(int(first), int(last) + 1))
    assert len(served_bytes) == len(set(served_bytes)), f"overlapping parts: {parts}"
    assert set(served_bytes) == wanted
    assert len(response.body) <= len(data) + 200


@requires_curl
@pytest.mark.parametrize("target", ["/small.txt", "/large.bin"])
def test_curl_ranges(served: ServerProcess, site: Site, target: str) -> None:
    data = site.files[target[1:]]
    single = curl("--fail", "-r", "100-199", served.url + target)
    assert single.returncode == 0, single.stderr
    assert single.stdout == data[100:200]
    several = curl("--fail", "--include", "-r", "0-9,20-29", served.url + target)
    assert several.returncode == 0, several.stderr
    status, headers, body = split_curl_head(several.stdout)
    assert status == 206
    parts = parse_byteranges(headers["content-type"], body)
    assert [part.data for part in parts] == [data[0:10], data[20:30]]


# ------------------------------------------------------------------------ listings


def test_listing_links_fetch_their_files(served: ServerProcess, site: Site) -> None:
    base = served.url + "/names/"
    page = http("GET", base)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    links = page_links(page.content)
    entries = [link for link in links if "entry" in link.classes]
    expected = {*AWKWARD_NAMES, *(folder + "/" for folder in AWKWARD_FOLDERS)}
    assert {unquote(link.href) for link in entries} == expected
    assert {link.text for link in entries} == expected
    for link in entries:
        # a raw #, ?, quote, space or < in an href would end or break the link
        assert not set(link.href) & set("#?\"'< \\"), link.href
        response = http("GET", urljoin(base, link.href))
        assert response.status_code == 200, link.href
        name = unquote(link.href)
        if name.endswith("/"):
            assert b'href="inside.txt"' in response.content
        else:
            assert response.content == site.files[f"names/{name}"], name


def test_listing_escapes_names_in_its_markup(served: ServerProcess) -> None:
    page = fetch(served, "/names/").body
    assert b"<script" not in page.lower()
    assert b"&lt;script&gt;alert(1)" in page
    assert b"a&amp;amp;b.txt" in page  # a literal "&amp;" in a name, escaped once


def test_listing_puts_folders_first_and_links_the_parent(served: ServerProcess) -> None:
    links = page_links(fetch(served, "/names/").body)
    entries = [link.href for link in links if "entry" in link.classes]
    folders = [index for index, href in enumerate(entries) if href.endswith("/")]
    files = [index for index, href in enumerate(entries) if not href.endswith("/")]
    assert len(folders) == len(AWKWARD_FOLDERS)
    assert max(folders) < min(files), entries
    parents = [link for link in links if "parent" in link.classes]
    assert [link.href for link in parents] == ["../"]
    parent = http("GET", urljoin(served.url + "/names/", parents[0].href))
    assert parent.status_code == 200
    assert 'href="names/"' in parent.text


def test_root_listing_hides_dot_files_and_links_out(served: ServerProcess) -> None:
    links = page_links(fetch(served, "/").body)
    hrefs = {link.href for link in links if "entry" in link.classes}
    assert {"small.txt", "large.bin", "sub/", "names/", "link-in"} <= hrefs
    assert not any(href.startswith(".") or href.startswith("%2E") for href in hrefs), hrefs
    assert "link-out" not in hrefs and "link-up/" not in hrefs and "link-up" not in hrefs
    assert not [link for link in links if "parent" in link.classes]
    sub = {link.href for link in page_links(fetch(served, "/sub/").body)}
    assert "nested.txt" in sub and "link-up2/" not in sub and ".hidden" not in sub


def test_index_html_is_served_for_its_folder(served: ServerProcess, site: Site) -> None:
    response = fetch(served, "/index-site/")
    assert response.status == 200
    assert response.body == site.index_html
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert fetch(served, "/index-site/other.txt").body == b"other\n"


def test_no_listing_gives_404_but_keeps_files_and_index(
    spawn: Callable[..., ServerProcess], site: Site
) -> None:
    server = spawn("--no-listing", serve=site.root, poller=ONE_POLLER)
    for target in ("/", "/names/", "/sub/"):
        response = fetch(server, target)
        assert response.status == 404, target
        assert b"nested.txt" not in response.body
    assert fetch(server, "/index-site/").body == site.index_html
    assert fetch(server, "/sub/nested.txt").body == b"nested\n"
    assert fetch(server, "/sub").header("location") == "/sub/"


# ----------------------------------------------------------------------- redirects

REDIRECTS = {
    "/sub": "/sub/",
    "/sub?x=1": "/sub/?x=1",
    "/sub?x=1&y=%2F&z": "/sub/?x=1&y=%2F&z",
    "/names/a%20folder": "/names/a%20folder/",
    "/names/%E6%97%A5%E6%9C%AC%20dir": "/names/%E6%97%A5%E6%9C%AC%20dir/",
    "/names/100%25%20dir?a=%25": "/names/100%25%20dir/?a=%25",
    "/index-site": "/index-site/",
    "//evil.example": "/evil.example/",
    "//evil.example/sub": "/evil.example/sub/",
    "///evil.example/sub?next=//evil.example": "/evil.example/sub/?next=//evil.example",
    "//sub": "/sub/",
}


def assert_stays_on_site(server: ServerProcess, location: str | None) -> None:
    if location is None:
        return
    assert location.startswith("/"), location
    assert not location.startswith("//") and not location.startswith("/\\"), location
    assert urlsplit(urljoin(server.url + "/a/b", location)).netloc == urlsplit(server.url).netloc


@pytest.mark.parametrize("target", list(REDIRECTS))
def test_folder_without_slash_redirects(served: ServerProcess, target: str) -> None:
    response = fetch(served, target)
    assert response.status == 301
    assert response.header("location") == REDIRECTS[target]
    assert_stays_on_site(served, response.header("location"))
    followed = fetch(served, REDIRECTS[target])
    assert followed.status == 200


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "//evil.example",
        "/%2fevil.example",
        "/%2F%2Fevil.example/",
        "/\\evil.example",
        "/%5cevil.example",
        "/%5c%5cevil.example/",
        "/..//evil.example",
        "//evil.example/%2e%2e",
        "/.//evil.example",
        "//evil.example/sub//",
        "/http://evil.example/",
        "/http:%2f%2fevil.example",
    ],
)
def test_no_location_leaves_the_site(served: ServerProcess, target: str) -> None:
    response = fetch(served, target)
    assert response.status in (200, 301, 400, 404), response.status
    assert_stays_on_site(served, response.header("location"))


# ----------------------------------------------------------------------- traversal

TRAVERSALS = [
    "/../secret.txt",
    "/../../../../../../../../etc/passwd",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub%2f..%2f..%2fsecret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/sub\\..\\..\\secret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/small.txt%00",
    "/small.txt%00.html",
    "/%00/../secret.txt",
    "/%2e%2e%00/secret.txt",
    "/.%00./secret.txt",
    "/%c0%ae%c0%ae/secret.txt",
    "/%c0%ae%c0%ae%c0%afsecret.txt",
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/%c0%2e%c0%2e/secret.txt",
    "/%c1%9c..%c1%9csecret.txt",
    "/%ff%fe/secret.txt",
    "/%ed%a0%80/secret.txt",
    "/%u002e%u002e/secret.txt",
    "/..;/secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/link-out",
    "/link-up/secret.txt",
    "/sub/link-up2/secret.txt",
    "/.env",
    "/%2eenv",
    "/%2Eenv",
    "/.git/config",
    "/%2egit/config",
    "/.git/",
    "/.git",
    "/sub/.hidden",
    "/sub/../.env",
    "/./.env",
    "/sub/%2e%2e/.env",
    "/{secret_abs}",
    "{secret_abs}",
    "{root_abs}/../secret.txt",
    "/sub/\x7f",
    "/%0d%0aX-Injected:%20yes",
    "http://test/../secret.txt",
    "http://test/%2e%2e/secret.txt",
]


@pytest.mark.parametrize("shape", TRAVERSALS)
def test_traversal_is_refused(served: ServerProcess, site: Site, shape: str) -> None:
    target = shape.format(secret_abs=site.secret_path, root_abs=site.root)
    response = fetch(served, target)
    assert response.status in (400, 404), (target, response.status, response.body[:100])
    assert site.secret not in response.body
    assert response.header("x-injected") is None
    assert response.header("location") is None


@pytest.mark.parametrize("target", ["/link-up/root/small.txt", "/link-up/root/"])
def test_a_link_out_of_the_root_is_not_followed_back_in(served: ServerProcess, target: str) -> None:
    assert fetch(served, target).status == 404


@pytest.mark.parametrize("raw_name", ODD_NAMES, ids=["latin-1", "newline", "backslash"])
def test_every_listed_name_can_be_fetched(served: ServerProcess, raw_name: bytes) -> None:
    links = page_links(fetch(served, "/odd/").body)
    listed = [link.href for link in links if "entry" in link.classes]
    href = quote(raw_name, safe="")
    if href not in listed:
        return  # not listed at all: consistent
    response = fetch(served, "/odd/" + href)
    assert (response.status, response.body) == (200, b"odd")


# --------------------------------------------------------------------- negotiation

#: Accept-Encoding (None: no field) -> the variant sent
ENCODINGS = {
    "none": (None, "identity"),
    "empty": ("", "identity"),
    "gzip": ("gzip", "gzip"),
    "br-over-gzip": ("br;q=1, gzip;q=0.5", "br"),
    "gzip-over-br": ("gzip;q=0.9, br;q=0.1", "gzip"),
    "gzip-refused": ("gzip;q=0", "identity"),
    "both-refused": ("gzip;q=0, br;q=0", "identity"),
    "identity": ("identity", "identity"),
    "x-gzip": ("x-gzip", "gzip"),
    "upper-case": ("GZIP", "gzip"),
    "unknown-only": ("zstd, compress", "identity"),
    "browser": ("gzip, deflate, br, zstd", "br"),
    "star-but-br": ("*, br;q=0", "gzip"),
}


def variant_bytes(site: Site, coding: str) -> bytes:
    return {"identity": site.enc_text, "gzip": site.enc_gz, "br": site.enc_br}[coding]


@pytest.mark.parametrize("case", list(ENCODINGS))
def test_precompressed_variant_is_chosen(served: ServerProcess, site: Site, case: str) -> None:
    accept, coding = ENCODINGS[case]
    fields = [] if accept is None else [("Accept-Encoding", accept)]
    response = fetch(served, "/enc/file.txt", fields)
    assert response.status == 200
    assert response.body == variant_bytes(site, coding)
    assert response.header("content-encoding") == (None if coding == "identity" else coding)
    vary = ",".join(response.header_all("vary")).lower()
    assert "accept-encoding" in vary, response.headers
    assert response.header("content-type") == TEXT_PLAIN


def test_each_variant_has_its_own_etag(served: ServerProcess) -> None:
    tags = {
        accept: fetch(served, "/enc/file.txt", [("Accept-Encoding", accept)]).header("etag")
        for accept in ("identity", "gzip", "br")
    }
    assert None not in tags.values()
    assert len(set(tags.values())) == 3, tags
    gzip_tag = tags["gzip"]
    assert gzip_tag is not None
    # the gzip tag validates the gzip variant, not the plain file
    matched = fetch(
        served, "/enc/file.txt", [("Accept-Encoding", "gzip"), ("If-None-Match", gzip_tag)]
    )
    assert matched.status == 304 and matched.header("etag") == gzip_tag
    # RFC 9110 15.4.5: a 304 carries the Vary the 200 would have
    assert "accept-encoding" in ",".join(matched.header_all("vary")).lower()
    plain = fetch(served, "/enc/file.txt", [("If-None-Match", gzip_tag)])
    assert plain.status == 200 and plain.header("etag") == tags["identity"]


@pytest.mark.parametrize(
    ("target", "start", "stop"), [("/enc/file.txt", 0, 10), ("/enc/big.txt", 1000, 50_000)]
)
def test_range_applies_to_the_variant(
    served: ServerProcess, site: Site, target: str, start: int, stop: int
) -> None:
    variant = site.enc_gz if target == "/enc/file.txt" else site.big_gz
    fields = [("Accept-Encoding", "gzip"), ("Range", f"bytes={start}-{stop - 1}")]
    response = fetch(served, target, fields)
    assert response.status == 206
    assert response.header("content-encoding") == "gzip"
    assert response.header("content-range") == f"bytes {start}-{stop - 1}/{len(variant)}"
    assert response.body == variant[start:stop]


def test_large_variant_and_head(served: ServerProcess, site: Site) -> None:
    whole = fetch(served, "/enc/big.txt", [("Accept-Encoding", "gzip")])
    assert whole.body == site.big_gz
    head = fetch(served, "/enc/big.txt", [("Accept-Encoding", "gzip")], method="HEAD")
    assert head.header("content-length") == str(len(site.big_gz))
    assert fetch(served, "/enc/big.txt").body == site.big_text


def test_a_variant_asked_by_its_own_name_is_a_plain_file(served: ServerProcess, site: Site) -> None:
    response = fetch(served, "/enc/file.txt.gz", [("Accept-Encoding", "gzip")])
    assert response.status == 200
    assert response.body == site.enc_gz
    assert response.header("content-type") == "application/gzip"
    assert response.header("content-encoding") is None


# ---------------------------------------------------------------- methods, types


@pytest.mark.parametrize("method", ["DELETE", "POST", "PUT", "PATCH"])
@pytest.mark.parametrize("target", ["/small.txt", "/names/", "/missing.txt"])
def test_other_methods_are_405_with_allow(served: ServerProcess, method: str, target: str) -> None:
    response = http(method, served.url + target, data=b"x=1")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("page.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("pixel.png", "image/png"),
        ("blob.qqqzz", "application/octet-stream"),
    ],
)
def test_content_types(served: ServerProcess, site: Site, name: str, content_type: str) -> None:
    response = http("GET", f"{served.url}/types/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == CACHE_CONTROL
    assert response.content == site.files[f"types/{name}"]


@pytest.mark.parametrize(
    ("target", "fields", "status"),
    [
        ("/missing.txt", [], 404),
        ("/sub", [], 301),
        ("/", [], 200),
        ("/small.txt", [("Range", "bytes=99999-")], 416),
        ("/small.txt", [("If-Match", '"nope"')], 412),
        ("/%00", [], 400),
    ],
)
def test_every_answer_says_nosniff(
    served: ServerProcess, target: str, fields: list[tuple[str, str]], status: int
) -> None:
    response = fetch(served, target, fields)
    assert response.status == status
    assert response.header("x-content-type-options") == "nosniff"


# ------------------------------------------------------------------------- uploads


@pytest.fixture(scope="module")
def upload_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def uploader(upload_root: Path) -> Iterator[ServerProcess]:
    """``treadle serve --upload`` (no --overwrite) on one poller."""
    process = ServerProcess(
        ["--upload", "--body-timeout", str(BODY_TIMEOUT_S)], serve=upload_root, poller=ONE_POLLER
    ).wait_listening()
    try:
        yield process
        assert process.alive(), f"the server died:\n{process.tail()}"
    finally:
        status = process.stop()
    assert status == 0, f"server exited with {status}"


def folder_for(root: Path, name: str, **existing: bytes) -> Path:
    folder = root / name
    folder.mkdir()
    for file_name, data in existing.items():
        (folder / file_name).write_bytes(data)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every name in ``folder`` (temporary files too) with its bytes; folders as b"/"."""
    return {
        path.name: b"/" if path.is_dir() else path.read_bytes() for path in sorted(folder.iterdir())
    }


@pytest.mark.parametrize("size", [0, 5000, 300_000, 3 * 1024 * 1024 + 7])
def test_put_stores_a_new_file(uploader: ServerProcess, upload_root: Path, size: int) -> None:
    folder = folder_for(upload_root, f"put-new-{size}")
    data = random_bytes(size, size)
    response = http("PUT", f"{uploader.url}/{folder.name}/new%20file.bin", data=data)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/{folder.name}/new%20file.bin"
    assert snapshot(folder) == {"new file.bin": data}
    assert http("GET", uploader.url + response.headers["Location"]).content == data


def test_put_chunked_and_unicode_names(uploader: ServerProcess, upload_root: Path) -> None:
    folder = folder_for(upload_root, "put-chunked")
    pieces = [random_bytes(70_000, n) for n in range(5)]
    with uploader.connect() as conn:
        conn.send(
            b"PUT /put-chunked/%E6%97%A5%20x.bin HTTP/1.1\r\nHost: test\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked(*pieces)
        )
        response = read_checked(conn, "chunked PUT")
    assert response.status == 201
    assert response.header("location") == "/put-chunked/%E6%97%A5%20x.bin"
    assert snapshot(folder) == {"日 x.bin": b"".join(pieces)}


def test_put_of_an_existing_name_is_409(uploader: ServerProcess, upload_root: Path) -> None:
    folder = folder_for(upload_root, "put-existing", **{"old.txt": b"old contents\n"})
    response = http("PUT", f"{uploader.url}/put-existing/old.txt", data=b"new contents\n")
    assert response.status_code == 409
    assert snapshot(folder) == {"old.txt": b"old contents\n"}


@pytest.mark.parametrize(
    ("target", "statuses"),
    [
        ("/no-such-folder/x.txt", {409}),
        ("/put-refused/.hidden", {404}),
        ("/put-refused/%2e%2e/escape.txt", {400, 404}),
        ("/put-refused/..%2fescape.txt", {400, 404}),
        ("/put-refused/", {405}),
        ("/put-refused/what%3F.txt", {400}),
        ("/put-refused/a-folder", {409}),
        ("/put-refused/CON.txt", {400}),
        ("/put-refused/" + "n" * 300, {400, 404}),
    ],
)
def test_put_refusals_leave_nothing(
    uploader: ServerProcess, upload_root: Path, target: str, statuses: set[int]
) -> None:
    folder = upload_root / "put-refused"
    (folder / "a-folder").mkdir(parents=True, exist_ok=True)
    before = (
        snapshot(folder),
        sorted(os.listdir(upload_root)),
        sorted(os.listdir(upload_root.parent)),
    )
    response = fetch(uploader, target, method="PUT", body=b"payload")
    assert response.status in statuses, (target, response.status, response.body)
    after = (
        snapshot(folder),
        sorted(os.listdir(upload_root)),
        sorted(os.listdir(upload_root.parent)),
    )
    assert after == before


def test_uploads_never_write_through_a_link_out(
    uploader: ServerProcess, upload_root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"untouched\n")
    folder = folder_for(upload_root, "links")
    (folder / "out").symlink_to(outside)
    (folder / "victim.txt").symlink_to(outside / "victim.txt")
    put = fetch(uploader, "/links/out/new.txt", method="PUT", body=b"evil\n")
    assert put.status == 404
    over = fetch(uploader, "/links/victim.txt", method="PUT", body=b"evil\n")
    assert over.status in (404, 409)
    form = http(
        "POST", f"{uploader.url}/links/out/", files=[("file", ("new.txt", b"evil\n", "text/plain"))]
    )
    assert form.status_code == 404
    assert snapshot(outside) == {"victim.txt": b"untouched\n"}


@pytest.mark.parametrize(
    ("target", "form", "status"),
    [
        ("/form-bad/", {"data": {"field": "no file at all"}}, 400),
        (
            "/form-bad/",
            {"files": [("file", ("same.txt", b"1", "text/plain")), ("file", ("same.txt", b"2"))]},
            400,
        ),
        ("/form-bad/missing/", {"files": [("file", ("a.txt", b"1"))]}, 404),
        ("/.hidden-folder/", {"files": [("file", ("a.txt", b"1"))]}, 404),
        ("/form-bad/a-file.txt", {"files": [("file", ("a.txt", b"1"))]}, 405),
    ],
    ids=["no-file", "same-name-twice", "missing-folder", "dot-folder", "file-url"],
)
def test_form_refusals_store_nothing(
    uploader: ServerProcess,
    upload_root: Path,
    target: str,
    form: dict[str, object],
    status: int,
) -> None:
    folder = upload_root / "form-bad"
    folder.mkdir(exist_ok=True)
    (folder / "a-file.txt").write_bytes(b"kept\n")
    before = snapshot(folder), sorted(os.listdir(upload_root))
    response = http("POST", uploader.url + target, **form)
    assert response.status_code == status, response.text
    assert (snapshot(folder), sorted(os.listdir(upload_root))) == before


def test_listing_offers_an_upload_form(uploader: ServerProcess, upload_root: Path) -> None:
    folder_for(upload_root, "with-form")
    page = fetch(uploader, "/with-form/").body
    assert b'method="post"' in page and b'enctype="multipart/form-data"' in page
    assert b'name="file"' in page


def test_form_post_stores_several_files(uploader: ServerProcess, upload_root: Path) -> None:
    folder = folder_for(upload_root, "form-ok")
    uploads = {
        "a.txt": b"first\n",
        "b b.bin": random_bytes(200_000, 7),
        "日本.txt": "日本\n".encode(),
        "empty.dat": b"",
    }
    files = [("file", (name, data, "application/octet-stream")) for name, data in uploads.items()]
    response = http("POST", f"{uploader.url}/form-ok/", files=files, data={"note": "x"})
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == "/form-ok/"
    assert snapshot(folder) == uploads
    listed = {unquote(link.href) for link in page_links(fetch(uploader, "/form-ok/").body)}
    assert set(uploads) <= listed


@pytest.mark.parametrize("position", [0, 1, 2])
def test_form_with_an_existing_name_stores_nothing(
    uploader: ServerProcess, upload_root: Path, position: int
) -> None:
    folder = folder_for(upload_root, f"form-clash-{position}", **{"taken.txt": b"original\n"})
    names = ["one.txt", "two.bin"]
    names.insert(position, "taken.txt")
    files = [
        ("file", (name, random_bytes(70_000, index), "text/plain"))
        for index, name in enumerate(names)
    ]
    response = http("POST", f"{uploader.url}/{folder.name}/", files=files)
    assert response.status_code == 409, response.text
    assert snapshot(folder) == {"taken.txt": b"original\n"}  # and no .part file


def test_form_file_names_cannot_leave_the_folder(
    uploader: ServerProcess, upload_root: Path
) -> None:
    folder = folder_for(upload_root, "form-paths")
    files = [("file", ("../../escape.txt", b"escaped?\n", "text/plain"))]
    response = http("POST", f"{uploader.url}/form-paths/", files=files)
    assert response.status_code in (303, 400)
    assert not (upload_root / "escape.txt").exists()
    assert not (upload_root.parent / "escape.txt").exists()
    assert set(os.listdir(folder)) <= {"escape.txt"}
    if response.status_code == 303:
        assert (folder / "escape.txt").read_bytes() == b"escaped?\n"


INTERRUPTED_SIZE = 5 * 1024 * 1024


def interrupted_head(kind: str, folder: str) -> bytes:
    """The head (and for a form, the part head) of an upload that never completes."""
    if kind == "form":
        return (
            f"POST /{folder}/ HTTP/1.1\r\nHost: test\r\nContent-Length: {INTERRUPTED_SIZE}\r\n"
            "Content-Type: multipart/form-data; boundary=cut-short\r\n\r\n--cut-short\r\n"
            'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        ).encode()
    return (
        f"PUT /{folder}/big.bin HTTP/1.1\r\nHost: test\r\n"
        f"Content-Length: {INTERRUPTED_SIZE}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("kind", "ending"),
    [("put", "close"), ("put", "reset"), ("put", "stall"), ("form", "close"), ("form", "reset")],
)
def test_interrupted_upload_leaves_nothing(
    uploader: ServerProcess, upload_root: Path, kind: str, ending: str
) -> None:
    folder = folder_for(upload_root, f"interrupted-{kind}-{ending}")
    conn = RawConnection(uploader.address)
    try:
        conn.send(interrupted_head(kind, folder.name))
        conn.send(random_bytes(1024 * 1024, 8))

        def writing() -> bool:
            parts = part_files(folder)
            return bool(parts) and os.path.getsize(folder / parts[0]) > 0

        wait_until(writing, what="the upload's .part file to receive data")
        assert part_files(folder)[0].startswith(".big.bin.")
        if ending == "stall":
            # the body deadline passes: 408, and the temporary file goes
            response = read_checked(conn, "stalled upload")
            assert response.status == 408
    finally:
        if ending == "reset":
            conn.reset()
        else:
            conn.close()
    wait_until(lambda: not os.listdir(folder), what="the aborted upload's files to go")
    assert not (folder / "big.bin").exists()
    later = http("PUT", f"{uploader.url}/{folder.name}/after.txt", data=b"still here\n")
    assert later.status_code == 201
    assert snapshot(folder) == {"after.txt": b"still here\n"}


@requires_curl
def test_curl_uploads_with_expect_continue(
    uploader: ServerProcess, upload_root: Path, tmp_path: Path
) -> None:
    folder = folder_for(upload_root, "curl-put")
    source = tmp_path / "source.bin"
    source.write_bytes(random_bytes(2 * 1024 * 1024, 9))
    result = curl(
        "--fail", "--include", "-H", "Expect: 100-continue", "-T", str(source),
        f"{uploader.url}/curl-put/uploaded.bin",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert b"HTTP/1.1 201 " in result.stdout, result.stdout[:300]
    assert b"\r\nlocation: /curl-put/uploaded.bin" in result.stdout.lower()
    assert snapshot(folder) == {"uploaded.bin": source.read_bytes()}


def test_overwrite_replaces_with_204(spawn: Callable[..., ServerProcess], tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_bytes(b"old\n")
    server = spawn("--upload", "--overwrite", serve=tmp_path, poller=ONE_POLLER)
    replaced = http("PUT", f"{server.url}/old.txt", data=b"new\n")
    assert replaced.status_code == 204
    assert replaced.content == b""
    created = http("PUT", f"{server.url}/fresh.txt", data=b"fresh\n")
    assert created.status_code == 201 and created.headers["Location"] == "/fresh.txt"
    form = http("POST", f"{server.url}/", files=[("file", ("old.txt", b"newer\n", "text/plain"))])
    assert form.status_code == 303
    assert snapshot(tmp_path) == {"fresh.txt": b"fresh\n", "old.txt": b"newer\n"}


@pytest.mark.parametrize(
    "fields",
    [[("If-None-Match", "*")], [("If-Match", '"not-the-current-tag"')]],
    ids=["if-none-match-star", "if-match-other"],
)
def test_conditional_put_is_refused_with_412(
    spawn: Callable[..., ServerProcess], tmp_path: Path, fields: list[tuple[str, str]]
) -> None:
    (tmp_path / "doc.txt").write_bytes(b"version 1\n")
    server = spawn("--upload", "--overwrite", serve=tmp_path, poller=ONE_POLLER)
    response = fetch(server, "/doc.txt", fields, method="PUT", body=b"version 2\n")
    assert response.status == 412
    assert snapshot(tmp_path) == {"doc.txt": b"version 1\n"}


def test_a_replaced_file_is_served_new_at_once(
    spawn: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    (tmp_path / "doc.txt").write_bytes(b"version 1\n")
    server = spawn(
        "--upload", "--overwrite", "--file-cache-valid", "60", serve=tmp_path, poller=ONE_POLLER
    )
    assert fetch(server, "/doc.txt").body == b"version 1\n"  # now in the cache
    assert fetch(server, "/doc.txt", method="PUT", body=b"version 2\n").status == 204
    assert (tmp_path / "doc.txt").read_bytes() == b"version 2\n"
    assert fetch(server, "/doc.txt").body == b"version 2\n"
    form = http("POST", f"{server.url}/", files=[("file", ("doc.txt", b"version 3\n"))])
    assert form.status_code == 303
    assert fetch(server, "/doc.txt").body == b"version 3\n"


def test_upload_past_max_body_bytes_is_413(
    spawn: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    # a small --body-buffer-bytes: the chunked body below is streamed into a .part file
    server = spawn(
        "--upload", "--max-body-bytes", "100K", "--body-buffer-bytes", "16K",
        serve=tmp_path, poller=ONE_POLLER,
    )  # fmt: skip
    # by Content-Length: refused from the head, nothing is created
    with server.connect() as conn:
        conn.send(b"PUT /huge.bin HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n\r\n")
        response = read_checked(conn, "PUT /huge.bin")
    assert response.status == 413
    assert os.listdir(tmp_path) == []
    with server.connect() as conn:
        conn.send(
            b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n"
        )
        response = read_checked(conn, "POST /")
    assert response.status == 413
    # chunked: refused once the body passes the limit, after writing has begun
    with server.connect() as conn:
        conn.send(b"PUT /chunked.bin HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.send(b"%x\r\n%s\r\n" % (60_000, random_bytes(60_000, 10)))
        wait_until(lambda: bool(part_files(tmp_path)), what="the chunked upload's .part file")
        conn.send(b"%x\r\n%s\r\n" % (60_000, random_bytes(60_000, 11)))
        response = read_checked(conn, "PUT /chunked.bin")
    assert response.status == 413
    wait_until(lambda: not os.listdir(tmp_path), what="no file and no .part left")
    small = http("PUT", f"{server.url}/small.bin", data=b"s" * 50_000)
    assert small.status_code == 201
    assert snapshot(tmp_path) == {"small.bin": b"s" * 50_000}


def test_two_puts_of_one_new_name_store_the_first_finished(
    uploader: ServerProcess, upload_root: Path
) -> None:
    folder = folder_for(upload_root, "race")
    head = b"PUT /race/same.bin HTTP/1.1\r\nHost: test\r\nContent-Length: 2000000\r\n\r\n"
    first, second = random_bytes(2_000_000, 12), random_bytes(2_000_000, 13)
    with uploader.connect() as slow, uploader.connect() as fast:
        slow.send(head + second[:1_000_000])
        fast.send(head + first[:1_000_000])
        wait_until(lambda: len(part_files(folder)) == 2, what="two .part files")
        fast.send(first[1_000_000:])
        won = read_checked(fast, "first PUT")
        slow.send(second[1_000_000:])
        lost = read_checked(slow, "second PUT")
    assert (won.status, lost.status) == (201, 409)
    assert snapshot(folder) == {"same.bin": first}


# -------------------------------------------------------------- --static beside an app


def test_static_mount_beside_an_application(
    spawn: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    (tmp_path / "x.txt").write_bytes(b"asset x\n")
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.css").write_bytes(b"body{}\n")
    server = spawn("--static", f"/assets={tmp_path}", poller=ONE_POLLER)
    assert fetch(server, "/assets/x.txt").body == b"asset x\n"
    css = fetch(server, "/assets/css/site.css")
    assert css.body == b"body{}\n" and css.header("content-type") == "text/css; charset=utf-8"
    assert fetch(server, "/assets").header("location") == "/assets/"
    assert fetch(server, "/assets/css").header("location") == "/assets/css/"
    listing = fetch(server, "/assets/")
    assert listing.status == 200
    assert {"x.txt", "css/"} <= {link.href for link in page_links(listing.body)}
    assert fetch(server, "/mark/alive").body == b"alive"
    assert fetch(server, "/hello").body == b"Hello, world!"
    assert fetch(server, "/assets/missing.txt").status == 404
    escaped = fetch(server, "/assets/../mark/alive")
    assert escaped.status in (400, 404) and escaped.body != b"alive"
    assert fetch(server, "/assetsx/x.txt").body != b"asset x\n"
    # the prefix is matched as sent: an escaped spelling reaches the application
    assert fetch(server, "/%61ssets/x.txt").body != b"asset x\n"
    assert fetch(server, "/assets?x=1").header("location") == "/assets/?x=1"
    for shape in ("/assets/%2e%2e/mark/alive", "/assets/..%2fmark/alive", "/assets/.env"):
        assert fetch(server, shape).status in (400, 404), shape


# --------------------------------------------------------------------------- last


def test_every_response_was_checked_for_leaks(served: ServerProcess) -> None:
    assert fetch(served, "/").status == 200
    assert RESPONSES.count > 50
    assert len(RESPONSES.forbidden) >= 3
