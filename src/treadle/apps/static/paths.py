"""From a request path to a file under the served folder, without ever leaving it.

Every static file server has had its traversal bug, and they come in few shapes: a
``..`` that survives because it was percent-encoded, an encoded ``/`` or ``\\`` that
becomes a separator after decoding, a second decoding pass that turns ``%252e`` into
``.``, an overlong UTF-8 form of ``.`` that a lenient decoder accepts, a NUL that cuts
the name short in C, a symbolic link that points out of the tree. The cure is an order of
operations that leaves no room for them, and this module is that order:

1. Split the raw path at ``/`` *before* decoding anything (RFC 3986 2.4), so a decoded
   ``/`` is data inside a name, which we then refuse: it never acts as a separator.
2. Percent-decode each segment exactly once, then decode it as strict UTF-8 (RFC 3629 3:
   overlong forms, surrogates and stray bytes are errors, not characters).
3. Refuse, rather than normalise, what only a probing client sends: ``.`` and ``..``
   segments (browsers remove dot-segments before sending, RFC 3986 5.2.4), backslashes,
   control characters. Empty segments (``//``) carry no meaning and are collapsed.
4. Refuse hidden names (a segment starting with ``.``: ``.git``, ``.env``) unless told
   otherwise.
5. Join the segments under the root by string concatenation, never ``os.path.join``,
   which restarts at an absolute component (and at a drive, on Windows).
6. Check symbolic links according to the policy: ``inside`` (the resolved path must stay
   under the root), ``all`` (follow any) or ``none`` (no link below the root at all).

Statuses: a request path we cannot even read (no leading ``/``, a broken escape, bad
UTF-8, a control character) is a 400; everything else is a 404, the answer that tells a
probing client nothing about what exists (RFC 9110 15.5.5). Reasons are fixed strings:
they never echo the client's bytes nor name the root.

The symlink check walks the segments below the root with one ``lstat`` each and calls
``os.path.realpath`` only when it meets a link. That is cheaper than calling realpath on
every request: CPython's realpath on POSIX is itself a loop with one ``lstat`` per
component, starting at ``/``, so it would also pay for every component of the root. The
walk stops at the first component that cannot be looked up (missing, not a folder, no
permission): the kernel cannot open anything below it either, and realpath resolves no
further than that. A path that does not exist is not refused here: the caller's ``stat``
answers 404 for it.

What this module cannot promise: the tree may change between this check and the caller's
``open`` (a folder replaced by a link). That only matters when untrusted users can write
into the served folder; ``O_NOFOLLOW`` on each component would be the cure.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_to_bytes

SymlinkPolicy = Literal["inside", "all", "none"]
SYMLINK_POLICIES: tuple[SymlinkPolicy, ...] = ("inside", "all", "none")

# No filesystem we serve from takes a longer name (NAME_MAX is 255 bytes on Linux and
# macOS, 255 UTF-16 units on NTFS); refusing early spares the syscalls.
MAX_NAME_CHARS = 255

_ON_WINDOWS = os.name == "nt"

# RFC 3986 2.1:  pct-encoded = "%" HEXDIG HEXDIG ; a "%" followed by anything else is malformed.
_BAD_ESCAPE_RE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# C0 controls, DEL and the C1 controls: never part of a name we serve.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
# Anything in a decoded segment that needs a second look.
_SUSPECT_RE = re.compile("[\x00-\x1f\x7f-\x9f/\\\\]")
# Windows reads these as something other than a plain name in the current folder.
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{n}" for n in range(10)]
    + [f"LPT{n}" for n in range(10)]
)
_WINDOWS_SHORT_NAME_RE = re.compile(r"~[0-9]")


class PathRefused(Exception):
    """The request path is not one we map to a file.

    ``status`` is 400 (the path cannot be read: no leading ``/``, a malformed escape,
    invalid UTF-8, a control character) or 404 (readable, but not served: a dot-segment,
    an encoded separator, a hidden name, a link out of the root). ``reason`` is one line,
    a fixed string safe to show a client: it never names the root or echoes the request.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MappedPath:
    """Where a request path leads under the root.

    ``fs_path`` is the root joined with the segments (links not resolved in the string);
    ``segments`` are the decoded names below the root (empty for the root itself);
    ``trailing_slash`` says whether the request path ended with ``/``, which the caller
    needs to redirect ``/dir`` to ``/dir/`` and to refuse ``/file.txt/``.
    """

    fs_path: str
    segments: tuple[str, ...]
    trailing_slash: bool


def decode_segments(raw_path: bytes) -> tuple[tuple[str, ...], bool]:
    """Percent-decode ``raw_path`` once and split it into names.

    ``raw_path`` is the path of an origin-form request target, query removed, still
    percent-encoded. Returns ``(segments, trailing_slash)``; empty segments (``//``, the
    leading and trailing ones) are dropped, so ``b"/"`` gives ``((), True)``.

    Raises ``PathRefused`` (400) when the path does not start with ``/`` (``*``, an
    absolute-form target, empty), has a malformed escape, is not strict UTF-8 once decoded
    or holds a control character; ``PathRefused`` (404) for a ``.`` or ``..`` segment
    (plain or encoded), a decoded ``/`` or a backslash (plain or encoded), or a name
    longer than ``MAX_NAME_CHARS``.
    """
    if raw_path[:1] != b"/":
        raise PathRefused(400, "the request path must start with '/'")
    has_escapes = b"%" in raw_path
    if has_escapes and _BAD_ESCAPE_RE.search(raw_path) is not None:
        raise PathRefused(400, "malformed percent-escape in the request path")
    segments: list[str] = []
    # RFC 3986 2.4: the path is split into segments before any octet is decoded, so an
    # encoded "/" stays data inside a name (and is refused below), never a separator.
    for raw_segment in raw_path.split(b"/"):
        if not raw_segment:
            continue
        octets = unquote_to_bytes(raw_segment) if has_escapes else raw_segment
        try:
            # RFC 3629 3: a decoder MUST refuse invalid sequences, overlong forms among
            # them ("%C0%AE" is not "."); Python's strict codec does, and refuses
            # surrogates too.
            segment = octets.decode("utf-8")
        except UnicodeDecodeError:
            raise PathRefused(400, "the request path is not valid UTF-8") from None
        if _SUSPECT_RE.search(segment) is not None:
            if _CONTROL_RE.search(segment) is not None:
                raise PathRefused(400, "control character in the request path")
            if "/" in segment:
                raise PathRefused(404, "encoded '/' in a name")
            raise PathRefused(404, "backslash in the request path")
        if segment == "." or segment == "..":
            raise PathRefused(404, "dot-segment in the request path")
        if len(segment) > MAX_NAME_CHARS:
            raise PathRefused(404, "name too long")
        segments.append(segment)
    return tuple(segments), raw_path.endswith(b"/")


def is_windows_alias(segment: str) -> bool:
    """Whether Windows would open ``segment`` as something other than that exact name.

    True for a drive or stream (``C:``, ``a::$DATA``), a trailing dot or space (Windows
    drops them, so ``.env.`` opens ``.env``), a device (``CON``, ``nul.txt``) and an 8.3
    short name (``GIT~1`` can be ``.git``). Applied by ``map_path`` on Windows only:
    elsewhere these are ordinary names.
    """
    if ":" in segment or segment[-1] in ". ":
        return True
    if _WINDOWS_SHORT_NAME_RE.search(segment) is not None:
        return True
    return segment.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES


def map_path(
    root: str,
    raw_path: bytes,
    *,
    allow_dotfiles: bool = False,
    symlinks: SymlinkPolicy = "inside",
) -> MappedPath:
    """Map ``raw_path`` (as for ``decode_segments``) to a path under ``root``.

    ``root`` is an absolute folder already passed through ``os.path.realpath``.
    ``allow_dotfiles`` lets names starting with ``.`` through (``.`` and ``..`` stay
    refused). ``symlinks`` is ``"inside"`` (every link must point somewhere under the root),
    ``"all"`` (follow any link) or ``"none"`` (no link below the root).

    Returns the ``MappedPath``, whether or not the file exists. Raises ``PathRefused``
    as ``decode_segments`` does, and with 404 for a hidden name, a link the policy
    refuses (also when the rest of the path does not exist), or a name the filesystem
    cannot represent. Raises ``ValueError`` for an unknown ``symlinks`` policy (our bug,
    not the client's).
    """
    if symlinks not in SYMLINK_POLICIES:
        raise ValueError(f"symlinks must be one of {SYMLINK_POLICIES}, not {symlinks!r}")
    segments, trailing_slash = decode_segments(raw_path)
    if not segments:
        return MappedPath(root, segments, trailing_slash)
    if not allow_dotfiles:
        for segment in segments:
            if segment[0] == ".":
                raise PathRefused(404, "hidden name in the request path")
    if _ON_WINDOWS:
        for segment in segments:
            if is_windows_alias(segment):
                raise PathRefused(404, "name with another meaning on Windows")
    # String concatenation, not os.path.join: no segment can restart the path.
    fs_path = root.rstrip(os.sep) + os.sep + os.sep.join(segments)
    if symlinks != "all":
        links = _links(root, segments)
        if links:
            if symlinks == "none":
                raise PathRefused(404, "symbolic link in the request path")
            # Each link's own target must stay inside, not only where the whole path
            # ends up: a link to the root's parent followed back down into the root
            # would otherwise be served (and reveal the root's name).
            for link in [*links, fs_path]:
                try:
                    real_path = os.path.realpath(link)
                except (OSError, ValueError):  # a link removed meanwhile, older Pythons
                    raise PathRefused(404, "symbolic link could not be resolved") from None
                if not _is_inside(root, real_path):
                    raise PathRefused(404, "symbolic link out of the served folder")
    return MappedPath(fs_path, segments, trailing_slash)


def is_servable_name(name: str) -> bool:
    """Whether a name found in a served folder can be asked for by a URL at all (valid
    UTF-8, no control character, slash or backslash, not too long, not ``.``/``..``):
    listings show only those, so every link they hold can be followed."""
    if name in ("", ".", "..") or len(name) > MAX_NAME_CHARS:
        return False
    if _SUSPECT_RE.search(name) is not None:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes: bytes that are not UTF-8
        return False
    return not (_ON_WINDOWS and is_windows_alias(name))


def _links(root: str, segments: tuple[str, ...]) -> list[str]:
    """The components of ``root`` + ``segments`` below the root that are links.

    Stops at the first component that cannot be looked up: nothing below it can be
    opened either. Raises ``PathRefused`` (404) for a name the filesystem encoding
    cannot represent.
    """
    links = []
    path = root.rstrip(os.sep)
    for segment in segments:
        path = path + os.sep + segment
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            break
        except ValueError:  # UnicodeEncodeError under a non-UTF-8 filesystem encoding
            raise PathRefused(404, "name not representable on this filesystem") from None
        if stat.S_ISLNK(mode):
            links.append(path)
    return links


def _is_inside(root: str, real_path: str) -> bool:
    """Whether ``real_path`` (resolved) is ``root`` or below it."""
    if real_path == root:
        return True
    prefix = root if root.endswith(os.sep) else root + os.sep
    return real_path.startswith(prefix)
