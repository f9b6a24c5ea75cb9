"""Safe names for uploaded files.

A browser sends the name of the file the user picked; it can hold a whole Windows
path, control and bidirectional characters, names Windows reserves for devices, or be
longer than a file system allows. ``sanitize_filename`` turns it into one safe
component, or None; ``multipart.py`` hands the raw name on, ``uploads.py`` decides.
"""

from __future__ import annotations

import re
import unicodedata

# Windows refuses these characters in a name, and ":" opens an NTFS alternate data stream.
_WINDOWS_FORBIDDEN = str.maketrans({c: "_" for c in '<>:"|?*'})
# Bidirectional controls can make "evil\u202etxt.exe" show as "evilexe.txt".
_BIDI_CONTROLS = frozenset(
    map(chr, [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
)
_RESERVED_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)
_MAX_NAME_BYTES = 255
_MAX_KEPT_SUFFIX_CHARS = 16


def sanitize_filename(name: str) -> str | None:
    """A file name that is safe to create in the upload folder, made from ``name``.

    Takes the last component after ``/`` or ``\\`` (Windows browsers once sent whole
    paths), removes control characters (C0, DEL, C1), bidirectional controls and lone
    surrogates, replaces the characters Windows forbids in names (``<>:"|?*``) with
    ``_``, strips leading dots and spaces (no hidden files, no ``..``) and trailing dots
    and spaces (which Windows drops), and cuts the result to 255 UTF-8 bytes on a
    character boundary, keeping a short extension.

    Returns None when nothing usable is left: an empty name, ``.``, ``..``, or a Windows
    device name such as ``CON`` or ``com1.txt``.
    """
    base = re.split(r"[/\\]", name)[-1]
    kept = "".join(ch for ch in base if not _is_unsafe_char(ch))
    cleaned = kept.translate(_WINDOWS_FORBIDDEN).lstrip(". ").rstrip(". ")
    if len(cleaned.encode("utf-8")) > _MAX_NAME_BYTES:
        cleaned = _shorten_name(cleaned).rstrip(". ")
    if cleaned in ("", ".", ".."):
        return None
    # Windows takes "CON", "con.txt" and "CON .tar.gz" all as the console device.
    if cleaned.split(".", 1)[0].rstrip(" ").upper() in _RESERVED_DEVICE_NAMES:
        return None
    return cleaned


def _is_unsafe_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category == "Cc" or category == "Cs" or ch in _BIDI_CONTROLS


def _shorten_name(name: str) -> str:
    """``name`` cut to at most 255 UTF-8 bytes, keeping a short extension when there is one."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > _MAX_KEPT_SUFFIX_CHARS:
        stem, suffix = name, ""
    else:
        suffix = "." + suffix
    room = _MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    # Cutting the bytes may split the last character; "ignore" drops its partial bytes.
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return stem + suffix
