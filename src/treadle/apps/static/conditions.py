"""Validators and preconditions for files: ETag, HTTP dates, and RFC 9110 section 13.

A static file has two validators: its ETag, made here from the file's size and
modification time, and its Last-Modified date, the modification time in whole seconds.
The application computes both from one ``stat`` and hands them to ``evaluate``, which
walks the four precondition fields in the order RFC 9110 13.2.2 fixes and answers with
the status to send instead of the file (304 or 412) or ``None`` to go on. ``If-Range``
is a separate question, asked only when a Range field is present: ``if_range_allows``.

Why the shape:

- Pure functions over ``Headers`` and two numbers, so every rule is a table row in the
  tests; nothing here stats a file or reads a clock. Where a rule needs "now" (the
  two-digit years of RFC 850 dates, RFC 9110 5.6.7; the strength of a date in If-Range,
  8.8.2.2) the caller may pass ``now_s``; without it the fallbacks documented on each
  function apply.
- Entity-tag lists (RFC 9110 8.8.3, 5.6.1) are parsed whole or not at all: a list with
  one malformed member is malformed. A malformed If-Match is a condition that is false
  (13.1.1: "otherwise, the condition is false"), so 412: the safe answer for a field
  whose purpose is to stop a request. A malformed If-None-Match matches nothing, so the
  request goes on (13.1.2 step 3), and its mere presence still hides If-Modified-Since.
  Commas may sit inside an opaque tag, so the list is scanned, never split on commas.
- A field sent several times is one list (RFC 9110 5.3): its lines are joined with
  ", ". A field all of whose lines are empty counts as absent. A date field sent more
  than once, or with a value that is not an HTTP-date, is ignored (13.1.3, 13.1.4).
- Dates compare at one-second resolution: ``mtime_s`` is the whole-second modification
  time that the Last-Modified field carries, so the client can only echo that back.

The ETag is strong (8.8.1): it changes whenever the file's size or nanosecond mtime
does. That is only as true as the filesystem's timestamps: a same-size rewrite within
one timestamp tick (a second on some old filesystems) keeps the tag.
"""

from __future__ import annotations

import datetime
import re

from treadle.http import Headers

__all__ = ["evaluate", "if_range_allows", "make_etag", "parse_http_date"]

_OWS = b" \t"

# RFC 9110 8.8.3:  entity-tag = [ weak ] opaque-tag ;  weak = %s"W/"
#                  opaque-tag = DQUOTE *etagc DQUOTE ;  etagc = %x21 / %x23-7E / obs-text
_ETAG = rb'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_ETAG_RE = re.compile(rb'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
# RFC 9110 13.1.1 / 13.1.2:  If-Match = "*" / #entity-tag  (5.6.1: a recipient accepts
# empty list elements, so every member is optional between the commas).
_ETAG_LIST_MEMBER = rb"[ \t]*(?:" + _ETAG + rb"[ \t]*)?"
_ETAG_LIST_RE = re.compile(_ETAG_LIST_MEMBER + rb"(?:," + _ETAG_LIST_MEMBER + rb")*")

_STAR = b"*"


def make_etag(size_bytes: int, mtime_ns: int, ino: int = 0, *, coding: str = "") -> bytes:
    """A strong entity-tag for a file, quoted, e.g. ``b'"17b4c2a9d3e08f00-1a4"'``.

    Hex of the nanosecond mtime and the size, led by the inode when ``ino`` is not 0
    (leave it 0 when several servers share one folder: inodes differ between machines).
    ``coding`` names the content coding of a precompressed variant (``"gzip"``), so a
    variant never shares a tag with the file it was made from (RFC 9110 8.8.3: tags
    are per representation). Raises ValueError for a negative size or inode, or a
    coding that is not a lowercase token.
    """
    if size_bytes < 0 or ino < 0:
        raise ValueError(f"negative size or inode: {size_bytes!r}, {ino!r}")
    body = b"%x-%x" % (mtime_ns, size_bytes)
    if ino:
        body = b"%x-%s" % (ino, body)
    if coding:
        if re.fullmatch(r"[a-z0-9][a-z0-9.+_-]*", coding) is None:
            raise ValueError(f"not a content coding: {coding!r}")
        body += b"." + coding.encode("ascii")
    return b'"' + body + b'"'


# RFC 9110 5.6.7:  HTTP-date = IMF-fixdate / obs-date
_DAY_NAMES = b"Mon|Tue|Wed|Thu|Fri|Sat|Sun"
_LONG_DAY_NAMES = b"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
           b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")  # fmt: skip
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS, start=1)}
_MONTH = b"(" + b"|".join(_MONTHS) + b")"
_TIME = rb"([0-9]{2}):([0-9]{2}):([0-9]{2})"
# IMF-fixdate = day-name "," SP day SP month SP year SP time-of-day SP GMT
_IMF_FIXDATE_RE = re.compile(
    b"(?:" + _DAY_NAMES + rb"), ([0-9]{2}) " + _MONTH + rb" ([0-9]{4}) " + _TIME + rb" GMT"
)
# rfc850-date = day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP GMT
_RFC850_DATE_RE = re.compile(
    b"(?:" + _LONG_DAY_NAMES + rb"), ([0-9]{2})-" + _MONTH + rb"-([0-9]{2}) " + _TIME + rb" GMT"
)
# asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year
_ASCTIME_DATE_RE = re.compile(
    b"(?:" + _DAY_NAMES + rb") " + _MONTH + rb" ([0-9]{2}| [0-9]) " + _TIME + rb" ([0-9]{4})"
)

_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def parse_http_date(value: bytes, *, now_s: int | None = None) -> int | None:
    """The Unix time (whole seconds) of an HTTP-date, or None if ``value`` is not one.

    Takes the three forms of RFC 9110 5.6.7: IMF-fixdate, the obsolete RFC 850 form and
    asctime. Names and "GMT" are case-sensitive, as the grammar has them; the day name
    is not checked against the date. A second of 60 (a leap second) counts as the next
    minute's first. A two-digit RFC 850 year is placed by ``now_s`` when given (below);
    without it, 69-99 mean 19xx and 00-68 mean 20xx. Never raises.
    """
    text = value.strip(_OWS)
    match = _IMF_FIXDATE_RE.fullmatch(text)
    if match is not None:
        day, month, year, hour, minute, second = match.groups()
        year_number = int(year)
    else:
        match = _RFC850_DATE_RE.fullmatch(text)
        if match is not None:
            day, month, year, hour, minute, second = match.groups()
            year_number = _two_digit_year(int(year), now_s)
        else:
            match = _ASCTIME_DATE_RE.fullmatch(text)
            if match is None:
                return None
            month, day, hour, minute, second, year = match.groups()
            year_number = int(year)
    hours, minutes, seconds = int(hour), int(minute), int(second)
    # RFC 9110 5.6.7: hour = 00-23, minute = 00-59, second = 00-60 (leap second)
    if hours > 23 or minutes > 59 or seconds > 60:
        return None
    try:
        ordinal = datetime.date(year_number, _MONTH_NUMBERS[month], int(day)).toordinal()
    except ValueError:  # year 0000, or a day the month does not have
        return None
    return (ordinal - _EPOCH_ORDINAL) * 86400 + hours * 3600 + minutes * 60 + seconds


def _two_digit_year(two_digits: int, now_s: int | None) -> int:
    if now_s is None:
        return (1900 if two_digits >= 69 else 2000) + two_digits
    current_year = datetime.date.fromordinal(_EPOCH_ORDINAL + now_s // 86400).year
    # RFC 9110 5.6.7: a two-digit year that appears to be more than 50 years in the future
    # MUST be read as the most recent past year with the same last two digits.
    lowest = current_year - 49
    return lowest + (two_digits - lowest) % 100


def evaluate(
    method: bytes, headers: Headers, etag: bytes, mtime_s: int, *, now_s: int | None = None
) -> int | None:
    """The precondition verdict for an existing file: 304, 412, or None to go on.

    ``etag`` is the file's current ETag (as ``make_etag`` made it) and ``mtime_s`` the
    whole-second time its Last-Modified field shows; ``now_s`` only places two-digit
    years. Call this only when the response without preconditions would be a 2xx
    (RFC 9110 13.2.1): not for a 404, a 405 or a redirect. Raises ValueError if
    ``etag`` is not an entity-tag; never for anything a client sends.
    """
    own_tag = _own_tag(etag)
    is_get_or_head = method in (b"GET", b"HEAD")

    # RFC 9110 13.2.2 step 1: If-Match first; false MUST yield 412.
    if_match = _list_field(headers, b"if-match")
    if if_match is not None:
        # RFC 9110 13.1.1: an origin server MUST use the strong comparison for If-Match.
        if not _list_matches(if_match, own_tag, strong=True):
            return 412
    else:
        # RFC 9110 13.2.2 step 2: If-Unmodified-Since only when If-Match is absent.
        since = _date_field(headers, b"if-unmodified-since", now_s)
        # RFC 9110 13.1.4: true when the last modification is earlier than or equal to it.
        if since is not None and mtime_s > since:
            return 412

    # RFC 9110 13.2.2 step 3: If-None-Match; false is 304 for GET/HEAD, else 412.
    if_none_match = _list_field(headers, b"if-none-match")
    if if_none_match is not None:
        # RFC 9110 13.1.2: a recipient MUST use the weak comparison for If-None-Match.
        if _list_matches(if_none_match, own_tag, strong=False):
            return 304 if is_get_or_head else 412
    # RFC 9110 13.1.3: If-Modified-Since MUST be ignored with If-None-Match present, or
    # when the method is neither GET nor HEAD (13.2.2 step 4).
    elif is_get_or_head:
        since = _date_field(headers, b"if-modified-since", now_s)
        # RFC 9110 13.1.3: false (so 304) when modified earlier than or at that date.
        if since is not None and mtime_s <= since:
            return 304
    return None


def if_range_allows(
    headers: Headers, etag: bytes, mtime_s: int, *, now_s: int | None = None
) -> bool:
    """Whether the Range field may be honoured: True with no If-Range or a matching one.

    Ask only when a Range field is present (RFC 9110 13.1.5: If-Range without Range is
    ignored). An entity-tag matches by strong comparison, so a weak tag never does. A
    date matches only when it equals ``mtime_s`` exactly (13.1.5 step 2) and, when
    ``now_s`` is given, the file was modified before the current second: a file changed
    within this second could change again under the same date, so its date is weak
    (8.8.2.2). Without ``now_s`` an exact date is trusted; a client that was sent an
    ETag uses that instead (13.1.5), so the date form is rare. A malformed If-Range, or
    one sent more than once, is false: the whole file is sent. Raises ValueError if
    ``etag`` is not an entity-tag.
    """
    own_tag = _own_tag(etag)
    values = [value for value in headers.get_all(b"if-range") if value.strip(_OWS)]
    if not values:
        return True
    if len(values) > 1:  # If-Range is one validator, never a list
        return False
    value = values[0].strip(_OWS)
    # RFC 9110 13.1.5: an entity-tag is told from a date by a DQUOTE in the first 3 bytes.
    if b'"' in value[:3]:
        match = _ETAG_RE.fullmatch(value)
        if match is None:
            return False
        # RFC 9110 13.1.5 step 3: strong comparison, so a weak tag never matches.
        return _tags_match((match.group(1) is not None, match.group(2)), own_tag, strong=True)
    date_s = parse_http_date(value, now_s=now_s)
    if date_s is None:
        return False
    # RFC 9110 13.1.5 step 1: a date that is not a strong validator is false (8.8.2.2).
    if now_s is not None and mtime_s >= now_s:
        return False
    # RFC 9110 13.1.5 step 2: true only for an exact match of Last-Modified.
    return date_s == mtime_s


_Tag = tuple[bool, bytes]  # (weak, opaque-tag without its quotes)


def _own_tag(etag: bytes) -> _Tag:
    match = _ETAG_RE.fullmatch(etag)
    if match is None:
        raise ValueError(f"not an entity-tag: {etag!r}")
    return match.group(1) is not None, match.group(2)


def _list_field(headers: Headers, name: bytes) -> bytes | None:
    """A list field's lines joined into one value, or None when absent or all empty."""
    values = [value for value in headers.get_all(name) if value.strip(_OWS)]
    if not values:
        return None
    return b", ".join(values)


def _date_field(headers: Headers, name: bytes, now_s: int | None) -> int | None:
    """The date of a one-date field, or None if absent, repeated or not an HTTP-date."""
    values = [value for value in headers.get_all(name) if value.strip(_OWS)]
    if len(values) != 1:
        return None
    return parse_http_date(values[0], now_s=now_s)


def _list_matches(value: bytes, own_tag: _Tag, *, strong: bool) -> bool:
    """Whether an If-Match / If-None-Match value names the file; False when malformed."""
    if value.strip(_OWS) == _STAR:
        # RFC 9110 13.1.1 / 13.1.2: "*" matches any current representation; the file exists.
        return True
    if _ETAG_LIST_RE.fullmatch(value) is None:
        return False
    # findall gives b"" for an absent W/ group.
    return any(
        _tags_match((weak == b"W/", opaque), own_tag, strong=strong)
        for weak, opaque in _ETAG_RE.findall(value)
    )


def _tags_match(theirs: _Tag, ours: _Tag, *, strong: bool) -> bool:
    # RFC 9110 8.8.3.2: strong comparison needs both tags strong and the opaque-tags equal;
    # weak comparison needs only the opaque-tags equal.
    if strong and (theirs[0] or ours[0]):
        return False
    return theirs[1] == ours[1]
