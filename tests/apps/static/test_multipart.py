"""The multipart/form-data parser: bodies in, events or MultipartError out.

Every well-formed body is fed whole, byte by byte and cut at every point (or at many
points when it is large): after merging consecutive PartData the events must not depend
on the cuts. Malformed bodies must raise MultipartError however they are cut. Bodies
built by requests and by the standard library's email package parse back to the files
they were built from. Hypothesis supplies random file contents and random bytes.
"""

from __future__ import annotations

import email.encoders
import email.policy
import random
from collections.abc import Iterable, Sequence
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.apps.static.multipart import (
    MultipartEnd,
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_from_content_type,
)
from treadle.apps.static.names import sanitize_filename

FAST = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)

BOUNDARY = b"----treadleBoundary7MA4YWxk"
DELIMITER = b"\r\n--" + BOUNDARY

# File contents that come close to the delimiter in every way short of being it.
NASTY = (
    b"\r\n--\r\n-" + BOUNDARY[:-1] + b"\r\n\r\n--" + BOUNDARY[:10] + b"\r" + b"\n--"
    b"\x00\xff\r\r\n\n--" + BOUNDARY + b"\r\n-" + BOUNDARY
)
assert DELIMITER not in NASTY

Outcome = tuple[str, list[tuple[object, ...]]]


def disposition(name: str, filename: str | None = None) -> bytes:
    value = f'form-data; name="{name}"'
    if filename is not None:
        value += f'; filename="{filename}"'
    return b"Content-Disposition: " + value.encode("utf-8")


def build_body(
    parts: Sequence[tuple[bytes, bytes]],
    boundary: bytes = BOUNDARY,
    preamble: bytes = b"",
    epilogue: bytes = b"\r\n",
) -> bytes:
    """A body of ``(header block, data)`` parts, each header block without its blank line."""
    out = [preamble + (b"\r\n" if preamble else b"")]
    for head, data in parts:
        out.append(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n")
    out.append(b"--" + boundary + b"--" + epilogue)
    return b"".join(out)


def simplify(events: Iterable[object]) -> list[tuple[object, ...]]:
    """Events as tuples, consecutive PartData merged into one."""
    out: list[tuple[object, ...]] = []
    for event in events:
        if isinstance(event, PartData):
            assert event.data, "PartData is never empty"
            if out and out[-1][0] == "data":
                out[-1] = ("data", out[-1][1] + event.data)  # type: ignore[operator]
            else:
                out.append(("data", event.data))
        elif isinstance(event, PartStart):
            out.append(("start", event.name, event.filename, event.content_type, event.headers))
        elif isinstance(event, PartEnd):
            out.append(("end",))
        else:
            assert isinstance(event, MultipartEnd)
            out.append(("done",))
    return out


def run(pieces: Iterable[bytes], boundary: bytes = BOUNDARY, **limits: int) -> Outcome:
    """Feed ``pieces`` then close: ("ok", events) or ("error", events before the error)."""
    parser = MultipartParser(boundary, **limits)
    events: list[object] = []
    try:
        for piece in pieces:
            events.extend(parser.feed(piece))
        parser.close()
    except MultipartError:
        return "error", simplify(events)
    return "ok", simplify(events)


def splittings(body: bytes, *, every_point: bool = False) -> list[list[bytes]]:
    """Whole, byte by byte, in 7-byte pieces, and cut in two at every point (or 24 of them)."""
    ways = [[body], [body[i : i + 1] for i in range(len(body))]]
    ways.append([body[i : i + 7] for i in range(0, len(body), 7)])
    points: Iterable[int] = range(len(body) + 1)
    if not every_point and len(body) > 24:
        points = random.Random(len(body)).sample(range(len(body) + 1), 24)
    ways.extend([body[:i], body[i:]] for i in points)
    return ways


def cut_at(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``body`` cut at the given offsets (clamped to its length)."""
    points = sorted({min(cut, len(body)) for cut in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def parse_all_ways(
    body: bytes,
    boundary: bytes = BOUNDARY,
    *,
    every_point: bool = False,
    max_header_bytes: int = 16 * 1024,
) -> Outcome:
    """The one outcome of ``body`` under every splitting; fails if splittings disagree."""
    ways = splittings(body, every_point=every_point)
    outcomes = [run(pieces, boundary, max_header_bytes=max_header_bytes) for pieces in ways]
    kinds = {kind for kind, _ in outcomes}
    assert len(kinds) == 1, f"splitting changed the outcome: {kinds}"
    if outcomes[0][0] == "ok":
        for outcome in outcomes[1:]:
            assert outcome == outcomes[0]
    return outcomes[0]


def files_of(events: list[tuple[object, ...]]) -> list[tuple[object, object, bytes]]:
    """``(name, filename, data)`` of each part, from simplified events."""
    files: list[tuple[object, object, bytes]] = []
    current: list[object] | None = None
    for event in events:
        if event[0] == "start":
            current = [event[1], event[2], b""]
        elif event[0] == "data":
            assert current is not None
            current[2] += event[1]  # type: ignore[operator]
        elif event[0] == "end":
            assert current is not None
            files.append((current[0], current[1], current[2]))  # type: ignore[arg-type]
            current = None
    return files


def expect_error(
    body: bytes, boundary: bytes = BOUNDARY, *, max_header_bytes: int = 16 * 1024
) -> None:
    kind, _ = parse_all_ways(body, boundary, max_header_bytes=max_header_bytes)
    assert kind == "error"


# -- boundary_from_content_type ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "boundary"),
    [
        (b"multipart/form-data; boundary=abc", b"abc"),
        (b"Multipart/Form-Data; BOUNDARY=abc", b"abc"),
        (b'multipart/form-data; boundary="abc"', b"abc"),
        (b'multipart/form-data; boundary="a b:c?d=e/(f),g+h_i.j\'k"', b"a b:c?d=e/(f),g+h_i.j'k"),
        (b'multipart/form-data; boundary="a\\bc"', b"abc"),
        (b"multipart/form-data;boundary=abc", b"abc"),
        (b'  multipart/form-data ;  charset=utf-8 ; boundary=x-y ; foo="bar"  ', b"x-y"),
        (b"multipart/form-data; boundary=" + b"a" * 70, b"a" * 70),
        (
            b"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk",
            b"----WebKitFormBoundary7MA4YWxk",
        ),
    ],
)
def test_boundary_from_content_type_accepts(value: bytes, boundary: bytes) -> None:
    assert boundary_from_content_type(value) == boundary


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"text/plain; boundary=abc",
        b"multipart/mixed; boundary=abc",
        b"multipart/form-data",
        b"multipart/form-data; charset=utf-8",
        b"multipart/form-data; boundary=",
        b'multipart/form-data; boundary=""',
        b"multipart/form-data; boundary=" + b"a" * 71,
        b'multipart/form-data; boundary="abc "',  # RFC 2046: the last character is no space
        b"multipart/form-data; boundary=a!b",  # a token, but "!" is no bchar
        b"multipart/form-data; boundary=a*b",
        b'multipart/form-data; boundary="a\x00b"',
        b'multipart/form-data; boundary="a\\\rb"',
        b"multipart/form-data; boundary=abc; boundary=abc",
        b"multipart/form-data; boundary=abc def",
        b'multipart/form-data; boundary="abc',
        b"multipart/form-data boundary=abc",
        b"multipart/form-data; boundary=\xc3\xa9",
        b"multipart; boundary=abc",
    ],
)
def test_boundary_from_content_type_refuses(value: bytes) -> None:
    with pytest.raises(MultipartError):
        boundary_from_content_type(value)


def test_parser_refuses_a_bad_boundary_as_a_programming_error() -> None:
    with pytest.raises(ValueError):
        MultipartParser(b"a\r\nb")


# -- well-formed bodies --------------------------------------------------------------------------


def test_several_files_with_nasty_contents_parse_the_same_however_split() -> None:
    files = [
        (b"file", b"a.bin", NASTY),
        (b"file", b"empty.txt", b""),
        (b"file", b"crlf.txt", b"\r\n"),
        (b"note", None, b"--"),
        (b"file", b"dashes", b"--" + BOUNDARY),  # the boundary without its CRLF is data
    ]
    parts = [
        (disposition(n.decode(), f.decode() if f else None) + b"\r\nContent-Type: x/y", data)
        for n, f, data in files
    ]
    body = build_body(parts)
    kind, events = parse_all_ways(body, every_point=True)
    assert kind == "ok"
    assert files_of(events) == [(n.decode(), f.decode() if f else None, d) for n, f, d in files]
    assert events[-1] == ("done",)


def test_part_start_carries_name_filename_type_and_headers() -> None:
    head = disposition("up", "a b.txt") + b"\r\nContent-Type:  text/plain  "
    kind, events = parse_all_ways(build_body([(head, b"x")]))
    assert kind == "ok"
    assert events[0] == (
        "start",
        "up",
        "a b.txt",
        b"text/plain",
        [
            (b"content-disposition", b'form-data; name="up"; filename="a b.txt"'),
            (b"content-type", b"text/plain"),
        ],
    )
    assert events[1:] == [("data", b"x"), ("end",), ("done",)]


def test_empty_form_is_just_the_end() -> None:
    assert parse_all_ways(b"--" + BOUNDARY + b"--\r\n") == ("ok", [("done",)])


@pytest.mark.parametrize(
    "preamble",
    [b"", b"This is a preamble.", b"\r\n", b"--" + BOUNDARY[:-1], b"x--" + BOUNDARY + b"y"],
    ids=["none", "text", "crlf", "partial-boundary", "boundary-inside-a-line"],
)
@pytest.mark.parametrize(
    "epilogue",
    [b"", b"\r\n", b"\r\nepilogue", b"--" + BOUNDARY + b"garbage", b"\r\n\x00" * 50, b"junk"],
    ids=["none", "crlf", "text", "boundary-garbage", "long-binary", "no-crlf"],
)
def test_preamble_and_epilogue_are_ignored(preamble: bytes, epilogue: bytes) -> None:
    body = build_body([(disposition("f", "a"), b"data")], preamble=preamble, epilogue=epilogue)
    kind, events = parse_all_ways(body)
    assert kind == "ok"
    assert files_of(events) == [("f", "a", b"data")]


def test_first_boundary_may_follow_a_crlf_ending_the_preamble() -> None:
    body = b"preamble\r\n--" + BOUNDARY + b"\r\n" + disposition("a") + b"\r\n\r\nv\r\n--"
    kind, events = parse_all_ways(body + BOUNDARY + b"--")
    assert (kind, files_of(events)) == ("ok", [("a", None, b"v")])


def test_feed_after_the_end_ignores_the_epilogue() -> None:
    parser = MultipartParser(BOUNDARY)
    events = parser.feed(build_body([(disposition("a"), b"v")], epilogue=b""))
    assert events[-1] == MultipartEnd()
    assert parser.feed(b"--" + BOUNDARY + b"\r\nanything at all") == []
    parser.close()  # no error: the closing boundary was seen


@pytest.mark.parametrize("padding", [b" ", b"\t", b" \t  \t"])
def test_transport_padding_after_a_boundary_is_tolerated(padding: bytes) -> None:
    body = (
        b"--" + BOUNDARY + padding + b"\r\n" + disposition("a") + b"\r\n\r\nA"
        b"\r\n--" + BOUNDARY + padding + b"\r\n" + disposition("b") + b"\r\n\r\nB"
        b"\r\n--" + BOUNDARY + b"--" + padding + b"\r\n"
    )
    kind, events = parse_all_ways(body)
    assert (kind, files_of(events)) == ("ok", [("a", None, b"A"), ("b", None, b"B")])


def test_a_one_character_boundary_works() -> None:
    body = build_body([(disposition("a"), b"-\r\n-\r\n--x-")], boundary=b"-")
    kind, events = parse_all_ways(body, boundary=b"-")
    assert (kind, files_of(events)) == ("ok", [("a", None, b"-\r\n-\r\n--x-")])


@pytest.mark.parametrize("encoding", [b"binary", b"8bit", b"7BIT"])
def test_identity_content_transfer_encoding_is_accepted(encoding: bytes) -> None:
    head = disposition("a") + b"\r\nContent-Transfer-Encoding: " + encoding
    kind, events = parse_all_ways(build_body([(head, b"v")]))
    assert (kind, files_of(events)) == ("ok", [("a", None, b"v")])


# -- Content-Disposition -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name", "filename"),
    [
        (b'form-data; name="x"; filename="a b.txt"', "x", "a b.txt"),
        (b"form-data; name=x; filename=a.txt", "x", "a.txt"),
        (b'FORM-DATA; NAME="x"; FileName="a.txt"', "x", "a.txt"),
        (b'form-data;name="x";filename="a.txt";', "x", "a.txt"),
        (b'form-data ; name = "x" ; filename = "a.txt"', "x", "a.txt"),
        (b'form-data; name="x"', "x", None),
        (b"form-data", None, None),
        (b'form-data; filename="a.txt"', None, "a.txt"),
        (b'form-data; name="x"; filename=""', "x", ""),
        (b'form-data; name="q\\"uote"; filename="back\\\\slash"', 'q"uote', "back\\slash"),
        # Browsers do not escape backslashes, and old ones send Windows paths.
        (b'form-data; name="f"; filename="C:\\Users\\me\\a.txt"', "f", "C:\\Users\\me\\a.txt"),
        (b'form-data; name="f"; filename="na\xc3\xafve \xe2\x9c\x93.txt"', "f", "naïve ✓.txt"),
        (b'form-data; name="f"; filename="a%22b.txt"', "f", "a%22b.txt"),
        (b"form-data; name=f; filename*=UTF-8''na%C3%AFve%20%E2%9C%93.txt", "f", "naïve ✓.txt"),
        (b"form-data; name=f; filename*=utf-8'en'a%20b.txt", "f", "a b.txt"),
        (b"form-data; name=f; filename*=ISO-8859-1''caf%E9.txt", "f", "café.txt"),
        (
            b"form-data; name=f; filename=\"plain.txt\"; filename*=UTF-8''%E2%82%AC.txt",
            "f",
            "€.txt",
        ),
        (
            b"form-data; name=f; filename*=UTF-8''%E2%82%AC.txt; filename=\"plain.txt\"",
            "f",
            "€.txt",
        ),
        (b'form-data; name="f"; size=123; creation-date="x"', "f", None),
    ],
)
def test_content_disposition_forms(value: bytes, name: str | None, filename: str | None) -> None:
    body = build_body([(b"Content-Disposition: " + value, b"v")])
    kind, events = parse_all_ways(body)
    assert kind == "ok"
    assert events[0][1:3] == (name, filename)


@pytest.mark.parametrize(
    "head",
    [
        b"Content-Type: text/plain",  # RFC 7578 4.2: Content-Disposition is required
        b"",
        disposition("a") + b"\r\n" + disposition("b"),
        b'Content-Disposition: attachment; name="a"',
        b'Content-Disposition: form-data; name="a"; name="b"',
        b'Content-Disposition: form-data; filename="a"; FILENAME="b"',
        b'Content-Disposition: form-data; name="a',
        b'Content-Disposition: form-data; name="a"x',
        b"Content-Disposition: form-data name=a",
        b"Content-Disposition: form-data; name=a b",
        b'Content-Disposition: form-data; name="\xff"',
        b'Content-Disposition: form-data; filename="\xc3"',
        b"Content-Disposition: form-data; filename*=UTF-16''%00a",
        b"Content-Disposition: form-data; filename*=UTF-8''%C3",
        b"Content-Disposition: form-data; filename*=UTF-8''%G0",
        b"Content-Disposition: form-data; filename*=UTF-8'a.txt",
        b"Content-Disposition: form-data; filename*=\"UTF-8''a.txt\"",
        b"Content-Disposition: form-data; filename*=UTF-8''a*b",
        disposition("a") + b"\r\nContent-Type: a/b\r\nContent-Type: c/d",
        disposition("a") + b"\r\nContent-Transfer-Encoding: base64",
    ],
)
def test_bad_part_heads_are_refused(head: bytes) -> None:
    expect_error(build_body([(head, b"v")]))


@pytest.mark.parametrize(
    "line",
    [
        b"No-Colon-Here",
        b" folded: value",
        b"\tfolded: value",
        b"Name : space before colon",
        b"Na me: v",
        b"X: nul\x00inside",
        b"X: bare\rcr",
        b"X: bare\nlf",
        b"X: other\x01control",
        b"X: del\x7f",
        b": no name",
    ],
)
def test_bad_header_lines_are_refused(line: bytes) -> None:
    expect_error(build_body([(disposition("a") + b"\r\n" + line, b"v")]))


def test_an_obs_fold_continuation_line_is_refused() -> None:
    head = b'Content-Disposition: form-data;\r\n name="a"'
    expect_error(build_body([(head, b"v")]))


# -- malformed framing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no boundary at all",
        b"--" + BOUNDARY,
        b"--" + BOUNDARY + b"\r\n",
        b"--" + BOUNDARY + b"\r\n" + disposition("a"),
        b"--" + BOUNDARY + b"\r\n" + disposition("a") + b"\r\n\r\ndata",
        b"--" + BOUNDARY + b"\r\n" + disposition("a") + b"\r\n\r\ndata\r\n--" + BOUNDARY,
        b"--" + BOUNDARY + b"\r\n" + disposition("a") + b"\r\n\r\ndata\r\n--" + BOUNDARY + b"-",
        build_body([(disposition("a"), b"v")])[: -len(b"--\r\n")] + b"\r\n",
    ],
)
def test_a_body_without_its_closing_boundary_fails_on_close(body: bytes) -> None:
    parser = MultipartParser(BOUNDARY)
    parser.feed(body)
    with pytest.raises(MultipartError):
        parser.close()
    expect_error(body)


@pytest.mark.parametrize(
    "after",
    [b"X\r\n", b"-X", b"  x\r\n", b"\rX", b"\n", b" \n", b"0123456789" * 10],
)
def test_a_delimiter_followed_by_garbage_is_refused(after: bytes) -> None:
    """RFC 2046 5.1.1: the delimiter cannot occur in a part, so this is no part data."""
    head = b"--" + BOUNDARY + b"\r\n" + disposition("a") + b"\r\n\r\nfirst"
    body = head + DELIMITER + after + b"\r\nmore\r\n--" + BOUNDARY + b"--\r\n"
    kind, events = parse_all_ways(body)
    assert kind == "error"
    # The first part's data came out, but never its PartEnd: the delimiter was not good.
    assert ("end",) not in events


def test_garbage_after_the_first_boundary_is_refused() -> None:
    expect_error(
        b"--" + BOUNDARY + b"X\r\n" + disposition("a") + b"\r\n\r\nv\r\n--" + BOUNDARY + b"--"
    )


def test_a_longer_boundary_sharing_the_prefix_is_refused() -> None:
    body = build_body([(disposition("a"), b"v")], boundary=BOUNDARY + b"more")
    expect_error(body)


def test_errors_are_sticky() -> None:
    parser = MultipartParser(BOUNDARY)
    with pytest.raises(MultipartError):
        parser.feed(b"--" + BOUNDARY + b"garbage\r\n")
    with pytest.raises(MultipartError):
        parser.feed(b"")
    with pytest.raises(MultipartError):
        parser.close()


# -- limits ---------------------------------------------------------------------------------------


def test_header_block_limit_is_exact() -> None:
    head = disposition("a") + b"\r\nX-Pad: "
    # The limit counts from after the boundary: CRLF, the header lines, the blank line.
    fixed = len(b"\r\n" + head + b"\r\n\r\n")
    at_limit = head + b"p" * (100 - fixed)
    assert parse_all_ways(build_body([(at_limit, b"v")]), max_header_bytes=100)[0] == "ok"
    over = head + b"p" * (101 - fixed)
    expect_error(build_body([(over, b"v")]), max_header_bytes=100)


def test_a_header_block_that_never_ends_fails_as_soon_as_it_reaches_the_limit() -> None:
    parser = MultipartParser(BOUNDARY, max_header_bytes=1024)
    start = b"\r\n" + disposition("a") + b"\r\nX: "
    parser.feed(b"--" + BOUNDARY + start)
    for _ in range(1024 - len(start) - 1):
        assert parser.feed(b"y") == []
    with pytest.raises(MultipartError):
        parser.feed(b"y")  # 1024 bytes and no blank line: the block cannot end in time


def test_endless_padding_counts_against_the_header_limit() -> None:
    parser = MultipartParser(BOUNDARY, max_header_bytes=1024)
    parser.feed(b"--" + BOUNDARY)
    with pytest.raises(MultipartError):
        for _ in range(200):
            parser.feed(b" " * 64)


def test_max_parts() -> None:
    parts = [(disposition(f"p{i}"), b"v") for i in range(3)]
    assert run([build_body(parts)], max_parts=3)[0] == "ok"
    assert run([build_body([*parts, (disposition("p4"), b"v")])], max_parts=3)[0] == "error"


# -- streaming ------------------------------------------------------------------------------------


def test_data_comes_out_as_soon_as_it_cannot_be_a_delimiter() -> None:
    parser = MultipartParser(BOUNDARY)
    events = parser.feed(b"--" + BOUNDARY + b"\r\n" + disposition("a", "f") + b"\r\n\r\n")
    assert [type(e) for e in events] == [PartStart]
    assert parser.feed(b"x" * 1000) == [PartData(b"x" * 1000)]
    # A possible start of the delimiter is held back, and only that.
    assert parser.feed(b"abc\r\n--" + BOUNDARY[:5]) == [PartData(b"abc")]
    assert parser.feed(b"!") == [PartData(b"\r\n--" + BOUNDARY[:5] + b"!")]
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\r") == [PartData(b"\r")]
    assert parser.feed(b"\n--" + BOUNDARY) == []  # a delimiter, but of what?
    assert parser.feed(b"--") == [PartEnd(), MultipartEnd()]


@given(
    contents=st.binary(min_size=1, max_size=2000),
    cuts=st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=40),
)
@FAST
def test_at_most_a_delimiter_prefix_is_ever_held_back(contents: bytes, cuts: list[int]) -> None:
    contents = contents.replace(DELIMITER, b"")
    parser = MultipartParser(BOUNDARY)
    parser.feed(b"--" + BOUNDARY + b"\r\n" + disposition("a") + b"\r\n\r\n")
    fed = emitted = pos = 0
    for size in cuts:
        piece = contents[pos : pos + size]
        pos += size
        fed += len(piece)
        emitted += sum(len(e.data) for e in parser.feed(piece) if isinstance(e, PartData))
        assert 0 <= fed - emitted <= len(DELIMITER) - 1


def test_a_large_body_in_64_kib_pieces() -> None:
    first = random.Random(7).randbytes(3 * 1024 * 1024) + DELIMITER[:-1]
    second = (b"\r\n--" + BOUNDARY[:-3] + b"\r") * 40_000
    body = build_body([(disposition("file", "a"), first), (disposition("file", "b"), second)])
    parser = MultipartParser(BOUNDARY)
    sizes = {"a": 0, "b": 0}
    current = ""
    for i in range(0, len(body), 64 * 1024):
        for event in parser.feed(body[i : i + 64 * 1024]):
            if isinstance(event, PartStart):
                current = event.filename or ""
            elif isinstance(event, PartData):
                assert len(event.data) <= 64 * 1024 + len(DELIMITER)
                sizes[current] += len(event.data)
    parser.close()
    assert sizes == {"a": len(first), "b": len(second)}


# -- bodies made by other encoders ----------------------------------------------------------------


def test_a_body_from_requests_parses_back_to_its_files() -> None:
    blobs = {
        "one.bin": bytes(range(256)) * 4,
        "two.txt": b"line\r\nline\n--\r\n",
        "naïve name.txt": NASTY,
        "empty": b"",
    }
    request = requests.Request(
        "POST",
        "http://example.invalid/upload",
        files=[("file", (name, data)) for name, data in blobs.items()],
        data={"comment": "hi"},
    ).prepare()
    assert isinstance(request.body, bytes)
    content_type = request.headers["Content-Type"]
    assert isinstance(content_type, str)
    boundary = boundary_from_content_type(content_type.encode("latin-1"))
    kind, events = parse_all_ways(request.body, boundary)
    assert kind == "ok"
    assert files_of(events) == [
        ("comment", None, b"hi"),
        *[("file", name, data) for name, data in blobs.items()],
    ]


def test_a_body_from_the_email_package_parses_back_to_its_files() -> None:
    message = MIMEMultipart("form-data")
    text = MIMEText("hello", "plain", "utf-8")
    text.replace_header("Content-Transfer-Encoding", "8bit")
    text.set_payload(b"hello")
    text.add_header("Content-Disposition", "form-data", name="greeting")
    message.attach(text)
    blob = b"\x00\x01\r\n--not the boundary\r\n\xff" * 50
    binary = MIMEApplication(blob, _encoder=email.encoders.encode_noop)
    binary.add_header("Content-Disposition", "form-data", name="file", filename="b.bin")
    message.attach(binary)
    raw = message.as_bytes(policy=email.policy.HTTP)
    head, body = raw.split(b"\r\n\r\n", 1)
    content_type = next(
        line.split(b":", 1)[1]
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-type:")
    )
    boundary = boundary_from_content_type(content_type)
    kind, events = parse_all_ways(body, boundary)
    assert kind == "ok"
    assert files_of(events) == [("greeting", None, b"hello"), ("file", "b.bin", blob)]


# -- properties -----------------------------------------------------------------------------------


@given(
    contents=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
)
@FAST
def test_random_files_round_trip(contents: list[bytes], cuts: list[int]) -> None:
    # RFC 2046 5.1.1: a sender picks a boundary that its data does not contain.
    contents = [c.replace(DELIMITER, b"") for c in contents]
    body = build_body([(disposition("file", f"{i}.bin"), c) for i, c in enumerate(contents)])
    pieces = cut_at(body, cuts)
    kind, events = run(pieces)
    assert kind == "ok"
    assert files_of(events) == [("file", f"{i}.bin", c) for i, c in enumerate(contents)]


def mutate(body: bytes, data: st.DataObject) -> bytes:
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b"--", b"\x00", b'"']))
        if action == "insert":
            body = body[:at] + chunk + body[at:]
        elif action == "delete":
            body = body[:at] + body[at + len(chunk) :]
        else:
            body = body[:at] + chunk + body[at + len(chunk) :]
    return body


SAMPLE_BODY = build_body(
    [
        (disposition("file", "a.txt") + b"\r\nContent-Type: text/plain", b"abc\r\n--x"),
        (b"Content-Disposition: form-data; name=b; filename*=UTF-8''%C3%A9", b""),
    ],
    preamble=b"pre",
)


@given(data=st.data())
@FAST
def test_mutated_bodies_give_events_or_multipart_error_whatever_the_cuts(
    data: st.DataObject,
) -> None:
    body = mutate(SAMPLE_BODY, data)
    pieces = cut_at(body, data.draw(st.lists(st.integers(0, len(body)), max_size=5)))
    whole = run([body], max_header_bytes=120)
    split = run(pieces, max_header_bytes=120)
    assert whole[0] == split[0]
    if whole[0] == "ok":
        assert whole == split


@given(
    junk=st.binary(max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=5),
    start=st.booleans(),
)
@FAST
def test_any_bytes_give_events_or_multipart_error(
    junk: bytes, cuts: list[int], start: bool
) -> None:
    body = (b"--" + BOUNDARY + b"\r\n" if start else b"") + junk
    pieces = cut_at(body, cuts)
    parser = MultipartParser(BOUNDARY, max_header_bytes=64, max_parts=2)
    try:
        for piece in pieces:
            parser.feed(piece)
        parser.close()
    except MultipartError:
        pass


@given(value=st.binary(max_size=120))
@FAST
def test_any_content_type_gives_a_boundary_or_multipart_error(value: bytes) -> None:
    try:
        boundary = boundary_from_content_type(b"multipart/form-data; boundary=" + value)
    except MultipartError:
        return
    MultipartParser(boundary)  # whatever came out is a boundary the parser takes


# -- sanitize_filename ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("a b.txt", "a b.txt"),
        ("naïve ✓.txt", "naïve ✓.txt"),
        ("C:\\Users\\me\\Desktop\\photo.jpg", "photo.jpg"),
        ("/etc/passwd", "passwd"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("dir/", None),
        (".htaccess", "htaccess"),
        ("...hidden", "hidden"),
        ("  spaced  ", "spaced"),
        ("trailing dots...", "trailing dots"),
        ("a\x00b\x1fc\x7fd\x85e.txt", "abcde.txt"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("C:evil.txt", "C_evil.txt"),
        ("lone\udcffsurrogate", "lonesurrogate"),
        ("", None),
        (".", None),
        ("..", None),
        (" . ", None),
        ("\x00\x01", None),
        ("CON", None),
        ("con.txt", None),
        ("Nul", None),
        ("COM1", None),
        ("lpt9.tar.gz", None),
        ("COM\u00b9", None),
        ("AUX .txt", None),
        ("CONSOLE", "CONSOLE"),
        ("COM10", "COM10"),
        ("icon.png", "icon.png"),
    ],
)
def test_sanitize_filename(name: str, safe: str | None) -> None:
    assert sanitize_filename(name) == safe


@pytest.mark.parametrize("char", ["a", "é", "✓", "😀"])
@pytest.mark.parametrize("extension", ["", ".txt", ".a-very-long-extension-indeed"])
def test_sanitize_filename_cuts_to_255_bytes_on_a_character(char: str, extension: str) -> None:
    name = char * 300 + extension
    safe = sanitize_filename(name)
    assert safe is not None
    encoded = safe.encode("utf-8")
    assert 255 - 4 < len(encoded) <= 255
    assert set(safe[: len(safe) - len(extension)]) <= {char} | set(extension)
    if extension == ".txt":
        assert safe.endswith(".txt")


@given(st.text(max_size=300))
@FAST
def test_sanitize_filename_gives_one_safe_component(name: str) -> None:
    safe = sanitize_filename(name)
    if safe is None:
        return
    assert safe not in ("", ".", "..")
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith((".", " ")) and not safe.endswith((".", " "))
    assert len(safe.encode("utf-8")) <= 255
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) < 0xA0 for ch in safe)
    assert sanitize_filename(safe) == safe
