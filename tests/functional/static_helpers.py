"""What test_static is built from: the served tree, a log of every response, the clients.

The tree is made once per module; the file names and contents are chosen so that a
mistake shows (a name decoded twice finds a different file, a cut range shows in the
bytes). Every response any client gets passes through ``RESPONSES.check``, which fails
the test at once if a header or a body names a folder of the test run on disk or holds
the secret that lives next to the served root; the module's last test checks that the
log did see responses.

All requests go through the helpers here (raw socket, ``requests``, ``curl``), each
with a deadline.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import gzip
import hashlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import requests

from .helpers import TIMEOUT_S, HTTPResponse, RawConnection, ServerProcess

#: a fixed past time for every file: dates in validators are strong, comparisons exact
MTIME_S = 1_700_000_000
CACHE_CONTROL = "public, max-age=60"
SMALL_SIZE = 10_000
LARGE_SIZE = 6 * 1024 * 1024 + 123

#: awkward file names in names/, each file holding its own name
AWKWARD_NAMES = (
    "with space.txt",
    "<script>alert(1).txt",
    "<script>alert(1)<\u2215script>.txt",  # a real "/" cannot be in a POSIX name
    "été.txt",
    "e\u0301te\u0301.txt",  # the same letters decomposed: a different file
    "日本.txt",
    "100%.txt",
    "%41.txt",  # decoded twice it would be A.txt, which holds something else
    "A.txt",
    "a#b.txt",
    "what?.txt",
    "it's.txt",
    'say "hi".txt',
    "a&amp;b.txt",
    "plus+sign.txt",
    "semi;colon.txt",
    "0first.txt",
)
AWKWARD_FOLDERS = ("a folder", "z-dir", "日本 dir", "100% dir")
#: names a listing shows that the path rules may refuse: raw bytes, each holding b"odd"
ODD_NAMES = (b"caf\xe9.txt", b"new\nline.txt", b"back\\slash.txt")


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@dataclass
class Site:
    """The served tree: its root, the secret beside it, the contents tests compare."""

    base: Path
    root: Path
    secret_path: Path
    secret: bytes
    small: bytes
    large: bytes
    enc_text: bytes
    enc_gz: bytes
    enc_br: bytes
    big_text: bytes
    big_gz: bytes
    index_html: bytes
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def large_sha256(self) -> str:
        return hashlib.sha256(self.large).hexdigest()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def build_site(base: Path) -> Site:
    """Write the served tree under ``base / "root"`` and a secret beside it."""
    root = base / "root"
    root.mkdir()
    secret = b"TOP-SECRET-" + os.urandom(8).hex().encode()
    secret_path = base / "secret.txt"
    secret_path.write_bytes(secret)
    enc_text = b"precompressed text, line after line\n" * 100
    site = Site(
        base=base,
        root=root,
        secret_path=secret_path,
        secret=secret,
        small=random_bytes(SMALL_SIZE, 1),
        large=random_bytes(LARGE_SIZE, 2),
        enc_text=enc_text,
        enc_gz=gzip.compress(enc_text, mtime=0),
        enc_br=b"BR-VARIANT" + random_bytes(300, 3),
        big_text=random_bytes(200_000, 4),
        big_gz=b"GZ-VARIANT" + random_bytes(100_000, 5),
        index_html=b"<!doctype html><title>home</title><h1>home page</h1>\n",
    )
    files = {
        "empty.txt": b"",
        "small.txt": site.small,
        "large.bin": site.large,
        "index-site/index.html": site.index_html,
        "index-site/other.txt": b"other\n",
        "sub/nested.txt": b"nested\n",
        "evil.example/sub/inner.txt": b"inner\n",
        "types/page.html": b"<p>page</p>\n",
        "types/style.css": b"p{color:red}\n",
        "types/app.js": b"console.log(1)\n",
        "types/data.json": b'{"a": 1}\n',
        "types/pixel.png": b"\x89PNG\r\n\x1a\n" + random_bytes(60, 6),
        "types/blob.qqqzz": b"who knows\n",
        "enc/file.txt": site.enc_text,
        "enc/file.txt.gz": site.enc_gz,
        "enc/file.txt.br": site.enc_br,
        "enc/big.txt": site.big_text,
        "enc/big.txt.gz": site.big_gz,
        ".env": secret,
        ".git/config": secret,
        "sub/.hidden": secret,
    }
    for name in AWKWARD_NAMES:
        files[f"names/{name}"] = name.encode() + b"\n"
    files["names/A.txt"] = b"the letter A, not %41\n"
    for folder in AWKWARD_FOLDERS:
        files[f"names/{folder}/inside.txt"] = folder.encode() + b"/inside\n"
    for name, data in files.items():
        write(root / name, data)
    site.files = files
    odd = os.fsencode(root / "odd")
    os.mkdir(odd)
    for raw_name in ODD_NAMES:
        with open(os.path.join(odd, raw_name), "wb") as odd_file:
            odd_file.write(b"odd")
    (root / "link-out").symlink_to(secret_path)
    (root / "link-up").symlink_to(base)
    (root / "sub" / "link-up2").symlink_to("../..")
    (root / "link-in").symlink_to("small.txt")
    for directory, folders, names in os.walk(base):
        for name in [*folders, *names]:
            os.utime(os.path.join(directory, name), (MTIME_S, MTIME_S), follow_symlinks=False)
    return site


# ------------------------------------------------------------------ the response log


class ResponseLog:
    """Every response of the module, each checked for what must never be in one."""

    def __init__(self) -> None:
        self.forbidden: list[bytes] = []
        self.count = 0

    def forbid(self, *values: bytes) -> None:
        self.forbidden.extend(value for value in values if value not in self.forbidden)

    def check(self, what: str, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.count += 1
        head = "\n".join(f"{name}: {value}" for name, value in headers).encode(
            "utf-8", "surrogateescape"
        )
        for value in self.forbidden:
            assert value not in head, f"{what}: a header holds {value!r}:\n{head!r}"
            assert value not in body, f"{what}: the body holds {value!r}: {body[:300]!r}"


RESPONSES = ResponseLog()


# ----------------------------------------------------------------------- clients


def fetch(
    server: ServerProcess,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    method: str = "GET",
    body: bytes = b"",
    conn: RawConnection | None = None,
) -> HTTPResponse:
    """One request over a raw socket (a new connection unless ``conn``); logged."""
    own = conn is None
    connection = server.connect() if conn is None else conn
    try:
        connection.request(method, target, headers, body)
        response = connection.read_response(method)
    finally:
        if own:
            connection.close()
    RESPONSES.check(f"{method} {target}", response.headers, response.body)
    return response


def read_checked(conn: RawConnection, what: str) -> HTTPResponse:
    """The next response on ``conn``; logged."""
    response = conn.read_response()
    RESPONSES.check(what, response.headers, response.body)
    return response


def http(method: str, url: str, **kwargs: object) -> requests.Response:
    """A request with ``requests``; logged."""
    kwargs.setdefault("timeout", TIMEOUT_S)
    kwargs.setdefault("allow_redirects", False)
    response = requests.request(method, url, **kwargs)  # type: ignore[arg-type]
    RESPONSES.check(f"{method} {url}", response.headers.items(), response.content)
    return response


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run curl (silent, deadline-bounded); its stdout is logged as a response."""
    curl_path = shutil.which("curl")
    assert curl_path is not None
    result = subprocess.run(
        [curl_path, "--silent", "--show-error", "--max-time", str(TIMEOUT_S), *args],
        capture_output=True,
        timeout=TIMEOUT_S + 5,
        check=False,
    )
    RESPONSES.check(f"curl {' '.join(args)}", (), result.stdout)
    return result


def split_curl_head(output: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of ``curl --include`` output (one response)."""
    head, _, body = output.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


# ------------------------------------------------------------------------ parsing


@dataclass
class Link:
    href: str
    classes: tuple[str, ...]
    text: str


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            values = dict(attrs)
            self._open = [values.get("href") or "", values.get("class") or "", ""]

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            href, classes, text = self._open
            self.links.append(Link(href, tuple(classes.split()), text))
            self._open = None


def page_links(page: bytes) -> list[Link]:
    """Every ``<a>`` of an HTML page, hrefs unescaped as a browser reads them."""
    parser = _LinkParser()
    parser.feed(page.decode("utf-8"))
    parser.close()
    return parser.links


@dataclass
class Part:
    content_type: str
    content_range: str
    data: bytes


def parse_byteranges(content_type: str, body: bytes) -> list[Part]:
    """The parts of a multipart/byteranges body, read by the standard library's parser."""
    document = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    # compat32 keeps header values as sent (the HTTP policy would re-quote parameters)
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(document)
    assert message.is_multipart(), content_type
    assert not message.defects, message.defects
    parts = []
    for part in message.get_payload():
        assert isinstance(part, email.message.Message)
        assert not part.defects, part.defects
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        parts.append(Part(str(part["Content-Type"]), str(part["Content-Range"]), data))
    return parts


def part_files(folder: Path) -> list[str]:
    """The temporary upload files (``.NAME.<hex>.part``) in ``folder``."""
    return sorted(name for name in os.listdir(folder) if name.endswith(".part"))
