"""Choosing a precompressed variant of a file from Accept-Encoding (RFC 9110 12.5.3).

A folder may hold ``app.js`` next to ``app.js.br`` and ``app.js.gz``; the application
knows which of those exist and in which order it prefers them, and asks
``choose_encoding`` which one to send. The answer is a coding name from its own tuple,
or None for the file itself. Only codings that are already on disk are ever chosen:
nothing here compresses.

The rules, as RFC 9110 12.5.3 and 12.4.2 give them and where they leave a choice:

- No Accept-Encoding field: the file itself. The RFC reads that as "anything goes",
  but a client that did not ask may not decode, so sending identity is the safe reading.
  An empty field, or one with nothing usable in it, likewise means identity.
- A coding's weight is its q (1 when absent); q=0 means "not acceptable". ``*`` gives
  its weight to every coding the field does not name. A coding neither named nor
  covered by ``*`` is not acceptable.
- The acceptable coding with the highest weight wins; a tie goes to the earlier one in
  the server's order.
- Identity competes with its own weight when the field names it, or else ``*``'s. When
  neither says anything identity is the fallback, beaten by any acceptable coding, so
  ``gzip;q=0.5`` still gets gzip. A tie between identity and a coding goes to the
  coding: the server lists only codings it prefers to the plain file.
- Names are case-insensitive (8.4.1); ``x-gzip`` is ``gzip`` and ``x-compress`` is
  ``compress`` (8.4.1.1, 8.4.1.3). A coding named twice keeps its lowest weight.
- A member with a malformed q (``q=2``, ``q=.5``, ``q=0.1234``) or a name that is not a
  token is dropped entirely, rather than read with a guessed weight. Parameters other
  than q are ignored; OWS around the "=" of q is tolerated.

When identity is also unacceptable and no coding is, the answer is still None: a 406
would be allowed there (RFC 9110 12.5.3 asks for identity "unless the identity coding
is indicated as unacceptable"), but the plain file is more useful to a client that
wrote a strange header. The application must send ``Vary: Accept-Encoding`` on
every response for a file that has variants, whichever was chosen.
"""

from __future__ import annotations

import re

__all__ = ["choose_encoding", "parse_accept_encoding"]

_OWS = b" \t"
# RFC 9110 5.6.2:  token = 1*tchar
_TOKEN_RE = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# RFC 9110 12.4.2:  qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE_RE = re.compile(rb"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")

# RFC 9110 8.4.1.1 / 8.4.1.3: x-compress and x-gzip SHOULD be taken as compress and gzip.
_ALIASES = {"x-gzip": "gzip", "x-compress": "compress"}


def _canonical(coding: str) -> str:
    name = coding.lower()
    return _ALIASES.get(name, name)


def parse_accept_encoding(value: bytes | None) -> dict[str, float]:
    """Map each coding an Accept-Encoding value names (lowercased, aliases folded) to its q.

    ``*`` and ``identity`` appear as they are named. Members with a malformed q or name
    are left out; an absent or empty value gives an empty dict. Never raises.
    """
    weights: dict[str, float] = {}
    if not value:
        return weights
    # RFC 9110 12.5.3:  Accept-Encoding = #( codings [ weight ] )
    #                   weight = OWS ";" OWS "q=" qvalue  (12.4.2)
    for member in value.split(b","):
        name, *parameters = member.split(b";")
        name = name.strip(_OWS)
        if _TOKEN_RE.fullmatch(name) is None:
            continue  # an empty member (5.6.1) or a malformed name
        weight: float | None = 1.0
        for parameter in parameters:
            key, equals, qvalue = parameter.partition(b"=")
            # Lenient: OWS around "=" (not in the grammar) still reads as the weight.
            if key.strip(_OWS).lower() != b"q":
                continue
            qvalue = qvalue.strip(_OWS)
            if not equals or _QVALUE_RE.fullmatch(qvalue) is None:
                weight = None
                break
            weight = float(qvalue)
        if weight is None:
            continue
        coding = _canonical(name.decode("ascii"))
        weights[coding] = min(weight, weights.get(coding, weight))
    return weights


def choose_encoding(accept_encoding: bytes | None, available: tuple[str, ...]) -> str | None:
    """Which of ``available`` (server preference order) to send, or None for the plain file.

    Returns the element of ``available`` itself (as spelled there). ``identity`` and
    ``*`` in ``available`` are skipped. The rules are in the module docstring. Never
    raises.
    """
    if accept_encoding is None:
        return None
    weights = parse_accept_encoding(accept_encoding)
    if not weights:
        # RFC 9110 12.5.3: an empty field value means no content coding is wanted.
        return None
    any_weight = weights.get("*")
    best: str | None = None
    best_weight = 0.0
    for coding in available:
        name = _canonical(coding)
        if name in ("identity", "*"):
            continue
        # RFC 9110 12.5.3: "*" matches any coding not listed; unlisted without "*" is out.
        weight = weights.get(name, any_weight if any_weight is not None else 0.0)
        # RFC 9110 12.4.2: q=0 means not acceptable; "> best" lets ties go to server order.
        if weight > best_weight:
            best, best_weight = coding, weight
    if best is None:
        return None
    identity_weight = weights.get("identity", any_weight)
    if identity_weight is not None and identity_weight > best_weight:
        return None
    return best
