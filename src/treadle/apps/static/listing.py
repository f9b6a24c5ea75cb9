"""The HTML page that lists a folder.

The page is built from names and numbers the application already has (``Entry``
values and the URL path), with no file system access and no clock, so it is tested
by parsing what it returns.

Every link on the page is relative ("name", "name/", "../"), so the page works the
same wherever the folder is mounted (``--static PREFIX=DIR``) and behind a proxy that
rewrites the path, and it never shows the server's own folder names. A name goes into
an href through ``urllib.parse.quote`` with nothing left safe, so ``#``, ``?``, ``%``,
``:`` and ``/`` can neither end the path nor turn the link into another scheme; it goes
into the text through ``html.escape``. File names on POSIX are bytes, which Python hands
out as ``str`` with lone surrogates standing for undecodable bytes: the href
percent-encodes those original bytes (so the application must decode a request path with
``unquote_to_bytes`` and ``os.fsdecode`` to find the file again), and the text shows
U+FFFD in their place. Control characters in a name are shown as U+FFFD too.

The page must be pleasant on a phone and on a desktop, in light and dark mode, with
no request for anything but itself: one inline stylesheet, no script, no image, no
font. On a narrow screen the table turns into one block per entry.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

__all__ = ["Entry", "format_mtime", "format_size", "render_listing"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One name in a folder: a file or a folder (``is_dir``), with its size and mtime."""

    name: str
    is_dir: bool
    size_bytes: int
    mtime_s: float


_SIZE_UNITS = ("KiB", "MiB", "GiB")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# C0 controls, DEL and C1 controls: shown as U+FFFD rather than sent raw into the page.
_CONTROLS_TO_REPLACEMENT = {code: "\ufffd" for code in [*range(0x20), *range(0x7F, 0xA0)]}

_STYLE = """\
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;\
--link:#0550ae;--hover:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;\
--line:#3d444d;--link:#4493f8;--hover:#151b23}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:60rem;padding:1rem;background:var(--bg);color:var(--fg);\
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.25rem;font-weight:600;margin:.25rem 0 1rem;overflow-wrap:anywhere}
h1 a{color:inherit}
a{color:var(--link);text-decoration:none}
a:hover,a:focus-visible{text-decoration:underline}
form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:0 0 1rem;\
padding:.75rem;border:1px solid var(--line);border-radius:6px}
label{font-weight:600}
input,button{font:inherit;max-width:100%}
.scroll{overflow-x:auto}
table{width:100%;border-collapse:collapse}
th,td{padding:.4rem .5rem;text-align:left;border-bottom:1px solid var(--line)}
th{font-size:.875rem;font-weight:600;color:var(--muted)}
td.name{overflow-wrap:anywhere}
.size{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.mtime{white-space:nowrap;color:var(--muted);font-variant-numeric:tabular-nums}
tbody tr:hover{background:var(--hover)}
a.dir{font-weight:600}
footer{margin-top:1rem;font-size:.875rem;color:var(--muted)}
@media (max-width:40rem){
body{padding:.5rem}
thead{display:none}
table,tbody,tr,td{display:block}
tr{padding:.4rem .25rem;border-bottom:1px solid var(--line)}
td{border:0;padding:0}
td.size,td.mtime{display:inline;font-size:.875rem;color:var(--muted)}
td.size:not(:empty)+td.mtime::before{content:" \\b7  "}
}
"""


def render_listing(
    url_path: str,
    entries: Iterable[Entry],
    *,
    upload_form: bool = False,
    upload_action: str | None = None,
) -> bytes:
    """The UTF-8 HTML page that lists ``entries`` of the folder at ``url_path``.

    ``url_path`` is the decoded URL path of the folder, ending with "/" (the
    application redirects "/docs" to "/docs/" first, or relative links would resolve
    against the parent). Folders come first, then files, each sorted by name without
    regard to case, then exactly; a link to the parent is added unless ``url_path`` is
    "/". Entries named "." or ".." are not listed. With ``upload_form`` the page has a
    form that POSTs ``multipart/form-data`` with its files in the field "file" to
    ``upload_action`` (to the page's own URL when None).

    Raises ``ValueError`` when ``url_path`` does not start and end with "/".
    """
    if not (url_path.startswith("/") and url_path.endswith("/")):
        raise ValueError(f"url_path {url_path!r} must start and end with '/'")
    shown = sorted(
        (entry for entry in entries if entry.name not in (".", "..")),
        key=lambda entry: (not entry.is_dir, entry.name.casefold(), entry.name),
    )
    title = _text(url_path)
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        '<meta name="color-scheme" content="light dark">\n',
        f"<title>Index of {title}</title>\n<style>\n{_STYLE}</style>\n</head>\n<body>\n",
        f'<h1 id="path">Index of {_breadcrumb(url_path)}</h1>\n',
    ]
    if upload_form:
        parts.append(_upload_form(upload_action))
    parts.append(
        '<div class="scroll">\n<table id="listing">\n<thead><tr><th class="name">Name</th>'
        '<th class="size">Size</th><th class="mtime">Modified (UTC)</th></tr></thead>\n<tbody>\n'
    )
    if url_path != "/":
        parts.append(
            '<tr class="parent"><td class="name"><a class="parent" href="../" rel="up"'
            ' title="Parent folder">../</a></td><td class="size"></td>'
            '<td class="mtime"></td></tr>\n'
        )
    parts.extend(_row(entry) for entry in shown)
    if not shown:
        parts.append('<tr class="empty"><td colspan="3">This folder is empty.</td></tr>\n')
    parts.append(f"</tbody>\n</table>\n</div>\n<footer>{_summary(shown)}</footer>\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts).encode("utf-8")


def format_size(size_bytes: int) -> str:
    """``size_bytes`` for people: "512 B", "1.5 KiB", "3.0 MiB", "2.1 GiB" (one decimal).

    The unit is the largest that keeps the rounded number under 1024, up to GiB.
    """
    if size_bytes < 1024:
        return f"{size_bytes} B"
    value = float(size_bytes)
    for unit in _SIZE_UNITS:
        value /= 1024
        if round(value, 1) < 1024 or unit == _SIZE_UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def format_mtime(mtime_s: float) -> str:
    """``mtime_s`` (seconds since the epoch) as UTC "YYYY-MM-DD HH:MM", seconds dropped.

    Returns "" for a time that no calendar date can show (NaN, or past year 9999).
    """
    moment = _moment(mtime_s)
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _moment(mtime_s: float) -> datetime | None:
    # Adding to the epoch (not fromtimestamp) works for times before 1970 on every platform.
    try:
        return _EPOCH + timedelta(seconds=mtime_s)
    except (OverflowError, ValueError):
        return None


def _row(entry: Entry) -> str:
    text = _text(entry.name)
    href = quote(_name_bytes(entry.name), safe="")
    moment = _moment(entry.mtime_s)
    when = (
        ""
        if moment is None
        else f'<time datetime="{moment:%Y-%m-%dT%H:%M}Z">{moment:%Y-%m-%d %H:%M}</time>'
    )
    if entry.is_dir:
        return (
            f'<tr class="dir"><td class="name"><a class="entry dir" href="{href}/">{text}/</a>'
            f'</td><td class="size"></td><td class="mtime">{when}</td></tr>\n'
        )
    size = entry.size_bytes
    return (
        f'<tr class="file"><td class="name"><a class="entry" href="{href}">{text}</a></td>'
        f'<td class="size" title="{size} bytes">{format_size(size)}</td>'
        f'<td class="mtime">{when}</td></tr>\n'
    )


def _breadcrumb(url_path: str) -> str:
    """Links to "/" and to each folder on the way to ``url_path``; the last is plain text."""
    segments = url_path[1:-1].split("/") if url_path != "/" else []
    depth = len(segments)
    if depth == 0:
        return '<span aria-current="page">/</span>'
    crumbs = [f'<a href="{"../" * depth}">/</a>']
    for index, segment in enumerate(segments[:-1]):
        crumbs.append(f'<a href="{"../" * (depth - 1 - index)}">{_text(segment)}/</a>')
    crumbs.append(f'<span aria-current="page">{_text(segments[-1])}/</span>')
    return "".join(crumbs)


def _upload_form(upload_action: str | None) -> str:
    # No action attribute submits to the page's own URL (an empty action is not valid HTML).
    action = "" if upload_action is None else f' action="{_text(upload_action)}"'
    return (
        f'<form id="upload" method="post" enctype="multipart/form-data"{action}>\n'
        '<label for="upload-files">Upload files here</label>\n'
        '<input type="file" id="upload-files" name="file" multiple required>\n'
        '<button type="submit">Upload</button>\n</form>\n'
    )


def _summary(entries: list[Entry]) -> str:
    folders = sum(1 for entry in entries if entry.is_dir)
    files = len(entries) - folders
    return f"{_count(folders, 'folder')}, {_count(files, 'file')}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _name_bytes(name: str) -> bytes:
    """The bytes a name stands for: UTF-8, with surrogate-escaped bytes given back."""
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no POSIX name decodes to
        return name.encode("utf-8", "surrogatepass")


def _text(value: str) -> str:
    """``value`` made safe as HTML text or attribute: escaped, no controls, no surrogates."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    return html.escape(value.translate(_CONTROLS_TO_REPLACEMENT), quote=True)
