"""The HTTP/1.1 grammar we accept, as named, precompiled patterns.

Each pattern sits next to the ABNF of RFC 9110 / RFC 9112 it implements. The patterns
are matched against whole lines or whole header sections at C speed; nothing here walks
bytes one at a time in Python.
"""

from __future__ import annotations

import re

# RFC 9110 5.6.2:  tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "."
#                          / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
#                  token = 1*tchar
TCHAR = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]"
TOKEN = TCHAR + rb"+"

# RFC 9110 5.5:  field-vchar   = VCHAR / obs-text
#                field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
#                field-value   = *field-content
FIELD_VCHAR = rb"[\x21-\x7e\x80-\xff]"
FIELD_VALUE = rb"(?:" + FIELD_VCHAR + rb"+(?:[ \t]+" + FIELD_VCHAR + rb"+)*)?"

# RFC 9112 5:  field-line = field-name ":" OWS field-value OWS
# Matched only at the start of a line (after LF, or at the very start of the buffer),
# so that ``findall`` over a whole section yields exactly one match per valid line:
# when the number of matches differs from the number of lines, some line is invalid
# and the slow path says which. The value is one run of allowed bytes that must end
# in a field-vchar (the engine backs off the trailing OWS by itself): a single
# character class runs several times faster than the alternation of field-content.
FIELD_LINE_RE = re.compile(
    rb"(?:(?<=\n)|\A)("
    + TOKEN
    + rb"):[ \t]*((?:[\t\x20-\x7e\x80-\xff]*"
    + FIELD_VCHAR
    + rb")?)[ \t]*\r\n"
)

TOKEN_RE = re.compile(TOKEN)
FIELD_VALUE_RE = re.compile(FIELD_VALUE)

# What application code may put in a response field value: no CTL but HTAB.
RESPONSE_VALUE_RE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")

# RFC 9112 3:  request-line = method SP request-target SP HTTP-version
#              method = token
# The target is checked for its form afterwards; here it is any run of VCHAR but "#"
# (a fragment is never sent in a request target, RFC 9112 3.2).
REQUEST_LINE_RE = re.compile(rb"(" + TOKEN + rb") ([\x21\x22\x24-\x7e]+) ([^ ]*)")

# RFC 9112 2.3:  HTTP-version = HTTP-name "/" DIGIT "." DIGIT ;  HTTP-name = %s"HTTP"
HTTP_VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")

# RFC 9112 3.2.1 / RFC 3986 3.3:  origin-form = absolute-path [ "?" query ]
# pchar = unreserved / pct-encoded / sub-delims / ":" / "@"; we accept any VCHAR but "#"
# in the path and query (matched above), and require the leading "/".
# RFC 9112 3.2.2:  absolute-form = absolute-URI (only the http and https schemes here)
ABSOLUTE_FORM_RE = re.compile(rb"([Hh][Tt][Tt][Pp][Ss]?)://([^/?]*)(.*)", re.DOTALL)

# RFC 9110 7.2 / RFC 3986 3.2.2:  Host = uri-host [ ":" port ]
#   uri-host = IP-literal / IPv4address / reg-name ; port = *DIGIT
# reg-name = *( unreserved / pct-encoded / sub-delims )
HOST_RE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]*)(?::[0-9]*)?")
# RFC 9112 3.2.3:  authority-form = uri-host ":" port  (CONNECT only)
AUTHORITY_FORM_RE = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~%!$&'()*+,;=]+):[0-9]+")

# RFC 9112 6.3 / RFC 9110 8.6:  Content-Length = 1*DIGIT. Bounded to 18 digits so the
# integer always fits in 63 bits; anything longer is refused before int() sees it.
CONTENT_LENGTH_RE = re.compile(rb"[0-9]{1,18}")

# RFC 9112 7.1:  chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
#                chunk-size = 1*HEXDIG
# RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
#                 chunk-ext-val = token / quoted-string
# RFC 9110 5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
#                 qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
#                 quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
# At most 16 hex digits: the size then fits in 64 bits, and a longer run is refused
# instead of being handed to int() (a known smuggling trick is an overflowing size).
QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
CHUNK_EXT = (
    rb"(?:[ \t]*;[ \t]*"
    + TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + TOKEN
    + rb"|"
    + QUOTED_STRING
    + rb"))?)*"
)
CHUNK_SIZE_LINE_RE = re.compile(rb"([0-9A-Fa-f]{1,16})" + CHUNK_EXT)
