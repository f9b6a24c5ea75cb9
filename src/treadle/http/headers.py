"""Header fields as an ordered list of ``(lowercased name, value)`` byte pairs.

A list keeps repeated fields apart and in arrival order (both matter: ``Set-Cookie``,
duplicate ``Content-Length``), costs one C-level allocation to build, and is what the
parser's ``findall`` produces anyway. Lookups lowercase the key and scan: requests carry
a dozen fields, where a scan beats building a dict that most requests never consult.
"""

from __future__ import annotations

from collections.abc import Iterable


def _key(name: bytes | str) -> bytes:
    if isinstance(name, str):
        name = name.encode("latin-1")
    return name.lower()


class Headers(list[tuple[bytes, bytes]]):
    """Received header fields; names are lowercase, values trimmed of SP and HTAB."""

    __slots__ = ()

    def get(self, name: bytes | str, default: bytes | None = None) -> bytes | None:
        """The first value of ``name`` (any case), or ``default``."""
        key = _key(name)
        for field_name, value in self:
            if field_name == key:
                return value
        return default

    def get_all(self, name: bytes | str) -> list[bytes]:
        """Every value of ``name`` (any case), in arrival order."""
        key = _key(name)
        return [value for field_name, value in self if field_name == key]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, (bytes, str)):
            key = _key(name)
            return any(field_name == key for field_name, _ in self)
        return list.__contains__(self, name)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bytes | str, bytes | str]]) -> Headers:
        """Build from arbitrary pairs (tests, applications); lowercases the names."""
        out = cls()
        for name, value in pairs:
            if isinstance(value, str):
                value = value.encode("latin-1")
            out.append((_key(name), value))
        return out


EMPTY_HEADERS = Headers()
