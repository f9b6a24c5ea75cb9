"""Range requests on a file of known size: parsing Range, framing 206 responses.

``parse_range`` turns a Range field value and the file's size into one of three
answers, each mapping to one response:

- ``None``: send the whole file, 200. The field is absent, names another unit, or is
  malformed in any member (RFC 9110 14.2 lets a server ignore an invalid
  ranges-specifier; a malformed field is a broken client, not a request for a 416).
- ``UNSATISFIABLE``: the field is valid but no member overlaps the file: 416 with
  ``Content-Range: bytes */size`` (``unsatisfied_range``).
- a non-empty list of half-open ``(start, stop)`` byte intervals within ``[0, size)``:
  206, single-part (``content_range``) for one interval, multipart/byteranges
  (``multipart_ranges``) for several.

The exact rules, in the order they apply (each cites what allows it):

1. The unit is "bytes" in any case (RFC 9110 14.1); anything else is ignored (14.2).
   Empty list members are skipped (5.6.1); at least one range-spec must remain.
2. More than ``max_ranges`` (16) range-specs: ignored, whole file (14.2, 17.15). This
   bounds the work before any number is read.
3. A member that is not ``first-last``, ``first-`` or ``-suffix`` with plain decimal
   digits, or whose last is below its first, makes the whole field invalid: ignored.
   Numbers of any length are compared exactly and capped at the file size, so a huge
   number costs nothing and never reaches ``int`` (whose digit limit would raise).
4. An empty file: ignored, whole (empty) file with 200 (14.2 lets a server ignore Range
   for a zero-length representation; the one form 14.1.2 calls satisfiable there, a
   suffix, would need a Content-Range that 14.4 cannot spell).
5. Each member is resolved (14.1.2): a last past the end is cut to the end, a suffix
   longer than the file is the whole file; a first at or past the end, and ``-0``, are
   unsatisfiable and dropped. None left: ``UNSATISFIABLE``.
6. Several ranges whose bytes plus 80 bytes of part overhead each add up to more than
   the file: ignored, whole file. Fewer bytes to send that way (15.3.7.2 puts part
   overhead at about 80 bytes), and overlapping ranges (``0-,0-,0-``) cannot amplify
   the response past the file's size.
7. Overlapping or adjacent ranges are coalesced (15.3.7.2 allows it, whatever their
   order); the survivors keep the client's order, a merged range taking the place of
   its earliest member (15.3.7.2: parts SHOULD follow the order of the request).

The multipart framing is computed, not streamed: ``multipart_ranges`` returns every
byte the response adds around the file's data and the exact Content-Length, so the
application sends the heads and the file slices without buffering either. The
boundary comes from the caller (random per response), which keeps this module
deterministic.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "PART_OVERHEAD_BYTES",
    "UNSATISFIABLE",
    "MultipartRanges",
    "RangeOutcome",
    "content_range",
    "multipart_ranges",
    "parse_range",
    "unsatisfied_range",
]


class RangeOutcome(enum.Enum):
    """The answer of ``parse_range`` that is not a list of ranges."""

    UNSATISFIABLE = "UNSATISFIABLE"

    def __repr__(self) -> str:
        return self.value


UNSATISFIABLE = RangeOutcome.UNSATISFIABLE

ByteRange = tuple[int, int]  # (start, stop): half-open, in bytes
ParsedRange = list[ByteRange] | Literal[RangeOutcome.UNSATISFIABLE] | None

PART_OVERHEAD_BYTES = 80  # RFC 9110 15.3.7.2: "typical overhead ... around 80 bytes"

_OWS = b" \t"
# RFC 9110 14.1.1:  int-range = first-pos "-" [ last-pos ] ;  suffix-range = "-" suffix-length
#                   first-pos = last-pos = suffix-length = 1*DIGIT
_RANGE_SPEC_RE = re.compile(rb"([0-9]*)-([0-9]*)")


def parse_range(value: bytes | None, size_bytes: int, *, max_ranges: int = 16) -> ParsedRange:
    """The byte ranges a Range field value selects in a file of ``size_bytes``.

    Returns None (ignore the field, send the whole file), ``UNSATISFIABLE`` (416), or a
    non-empty list of ``(start, stop)`` intervals with ``0 <= start < stop <= size``,
    disjoint and not adjacent. The module docstring lists the rules. Raises ValueError
    only for a negative ``size_bytes``; never for any field value.
    """
    if size_bytes < 0:
        raise ValueError(f"negative size: {size_bytes!r}")
    if value is None:
        return None
    unit, equals, range_set = value.partition(b"=")
    # RFC 9110 14.1: range units are compared case-insensitively.
    # RFC 9110 14.2: an origin server MUST ignore a Range with a unit it does not understand.
    if not equals or unit.strip(_OWS).lower() != b"bytes":
        return None
    # RFC 9110 5.6.1: empty list members are accepted and ignored.
    members = [member.strip(_OWS) for member in range_set.split(b",")]
    specs = [member for member in members if member]
    if not specs or len(specs) > max_ranges:  # 1#range-spec; rule 2
        return None

    cap = size_bytes + 1  # every number past the end acts alike
    requested: list[tuple[int | None, int | None]] = []  # (first, last) or (None, suffix)
    for spec in specs:
        match = _RANGE_SPEC_RE.fullmatch(spec)
        if match is None:
            return None
        first, last = match.groups()
        if not first:
            if not last:
                return None  # a lone "-"
            requested.append((None, _capped(last, cap)))
        else:
            # RFC 9110 14.1.1: an int-range with last-pos below first-pos is invalid.
            if last and _less_than(last, first):
                return None
            requested.append((_capped(first, cap), _capped(last, cap) if last else None))

    if size_bytes == 0:  # rule 4
        return None

    ranges: list[ByteRange] = []
    for first_pos, last_pos in requested:
        if first_pos is None:
            # RFC 9110 14.1.2: a suffix longer than the file selects the whole file;
            # a zero suffix-length is unsatisfiable.
            if last_pos:
                ranges.append((max(0, size_bytes - last_pos), size_bytes))
        # RFC 9110 14.1.2: satisfiable only if first-pos is below the length; a last-pos
        # at or past the end is replaced by the last byte.
        elif first_pos < size_bytes:
            stop = size_bytes if last_pos is None else min(last_pos + 1, size_bytes)
            ranges.append((first_pos, stop))
    if not ranges:
        return UNSATISFIABLE

    if len(ranges) > 1:  # rule 6
        total_bytes = sum(stop - start for start, stop in ranges)
        if total_bytes + PART_OVERHEAD_BYTES * len(ranges) > size_bytes:
            return None
    return _coalesce(ranges)


def _capped(digits: bytes, cap: int) -> int:
    """The number ``digits`` spells, or ``cap`` if it is larger; no int() of huge input."""
    significant = digits.lstrip(b"0") or b"0"
    if len(significant) > len(str(cap)):
        return cap
    return min(int(significant), cap)


def _less_than(digits: bytes, other: bytes) -> bool:
    """Whether the decimal number ``digits`` is below ``other``, exactly, at any length."""
    left = digits.lstrip(b"0")
    right = other.lstrip(b"0")
    return (len(left), left) < (len(right), right)


def _coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    """Merge overlapping or adjacent ranges; keep the order of each group's first member."""
    merged: list[list[int]] = []  # [start, stop, index of the earliest member]
    for index in sorted(range(len(ranges)), key=ranges.__getitem__):
        start, stop = ranges[index]
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], stop)
            last[2] = min(last[2], index)
        else:
            merged.append([start, stop, index])
    merged.sort(key=lambda group: group[2])
    return [(start, stop) for start, stop, _ in merged]


def content_range(start: int, stop: int, size_bytes: int) -> bytes:
    """The Content-Range value of ``[start, stop)``, e.g. ``b"bytes 0-99/1000"``.

    RFC 9110 14.4: ``bytes first-last/complete-length`` with an inclusive last.
    Raises ValueError unless ``0 <= start < stop <= size_bytes``.
    """
    if not 0 <= start < stop <= size_bytes:
        raise ValueError(f"not a range within the file: [{start}, {stop}) of {size_bytes}")
    return b"bytes %d-%d/%d" % (start, stop - 1, size_bytes)


def unsatisfied_range(size_bytes: int) -> bytes:
    """The Content-Range value for a 416, e.g. ``b"bytes */1000"`` (RFC 9110 14.4, 15.5.17)."""
    return b"bytes */%d" % size_bytes


@dataclass(frozen=True, slots=True)
class MultipartRanges:
    """The framing of a multipart/byteranges body (RFC 9110 14.6), without the data.

    The body is, in order: for each ``(head, start, stop)`` in ``parts``, ``head`` then
    the file's bytes ``[start, stop)``; then ``closing``. ``content_length`` is its exact
    length. ``content_type`` is the response's Content-Type value.
    """

    boundary: bytes
    content_type: bytes
    parts: tuple[tuple[bytes, int, int], ...]
    closing: bytes
    content_length: int


# RFC 2046 5.1.1: a boundary is 1 to 70 bchars; we take those that are also tchars, so the
# Content-Type parameter needs no quoting (RFC 9110 5.6.6).
_BOUNDARY_RE = re.compile(rb"[0-9A-Za-z'+_.-]{1,70}")
_FIELD_VALUE_RE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


def multipart_ranges(
    ranges: list[ByteRange], size_bytes: int, content_type: bytes, boundary: bytes
) -> MultipartRanges:
    """The multipart/byteranges framing for ``ranges`` of a file of ``size_bytes``.

    ``content_type`` is the file's own media type, repeated in each part (omitted when
    empty); ``boundary`` should be random per response (say ``secrets.token_hex(16)``)
    so no file can contain it. Raises ValueError for fewer than two ranges (RFC 9110
    15.3.7.2: a server MUST NOT send a multipart response to a single-range request),
    a range outside the file, a boundary that is not 1-70 token characters, or a
    content type holding control characters.
    """
    # RFC 9110 15.3.7.2: a single range MUST NOT be sent as multipart.
    if len(ranges) < 2:
        raise ValueError("multipart/byteranges needs at least two ranges")
    if _BOUNDARY_RE.fullmatch(boundary) is None:
        raise ValueError(f"unusable boundary {boundary!r}")
    if _FIELD_VALUE_RE.fullmatch(content_type) is None:
        raise ValueError(f"invalid content type {content_type!r}")
    type_line = b"Content-Type: " + content_type + b"\r\n" if content_type else b""
    parts: list[tuple[bytes, int, int]] = []
    length = 0
    for index, (start, stop) in enumerate(ranges):
        # RFC 2046 5.1.1: the first delimiter may open the body; the others follow a CRLF.
        delimiter = b"--" if index == 0 else b"\r\n--"
        head = (
            delimiter + boundary + b"\r\n" + type_line
            + b"Content-Range: " + content_range(start, stop, size_bytes) + b"\r\n\r\n"
        )  # fmt: skip
        parts.append((head, start, stop))
        length += len(head) + stop - start
    closing = b"\r\n--" + boundary + b"--\r\n"
    return MultipartRanges(
        boundary=boundary,
        content_type=b"multipart/byteranges; boundary=" + boundary,
        parts=tuple(parts),
        closing=closing,
        content_length=length + len(closing),
    )
