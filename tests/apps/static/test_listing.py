"""The folder listing page: parsed back with the standard library's html.parser.

The checks are the ones a browser test would make, on the parsed page rather than on
strings: the order of the rows, hrefs that resolve and unquote back to the names, text
that shows the names and nothing else, the parent link, the upload form, and a page that
asks for nothing outside itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, unquote, unquote_to_bytes, urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.apps.static.listing import Entry, format_mtime, format_size, render_listing

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRICKY_NAMES = [
    "a b.txt",
    "<script>alert(1)</script>",
    'say "hi".txt',
    "it's.txt",
    "fish & chips",
    "&amp;",
    "naïve ✓ 日本語.txt",
    "100%.txt",
    "%2e%2e",
    "#hash",
    "?query",
    "semi;colon",
    "javascript:alert(1)",
    "back\\slash",
    "+plus=equals",
    "-",
]


@dataclass
class Link:
    attrs: dict[str, str | None]
    text: str = ""


@dataclass
class Row:
    attrs: dict[str, str | None]
    links: list[Link] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)


class Page(HTMLParser):
    """What a browser test would look at: elements by id, rows, links and their text."""

    def __init__(self, data: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.by_id: dict[str, tuple[str, dict[str, str | None]]] = {}
        self.rows: list[Row] = []
        self.breadcrumb: list[Link] = []
        self.title = ""
        self.h1 = ""
        self.text = ""
        self._open: list[str] = []
        self._link: Link | None = None
        self.feed(data.decode("utf-8"))
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        assert len(attributes) == len(attrs), f"repeated attribute in <{tag}>"
        self.tags.append((tag, attributes))
        if "id" in attributes:
            assert attributes["id"] not in self.by_id, "ids are unique"
            self.by_id[str(attributes["id"])] = (tag, attributes)
        if tag == "tr" and "tbody" in self._open:
            self.rows.append(Row(attributes))
        if tag == "td" and self.rows:
            self.rows[-1].cells.append("")
        if tag == "a":
            self._link = Link(attributes)
            if "h1" in self._open:
                self.breadcrumb.append(self._link)
            elif self.rows and "tbody" in self._open:
                self.rows[-1].links.append(self._link)
        if tag not in ("meta", "input", "br"):
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._link = None
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        self.text += data
        if self._link is not None:
            self._link.text += data
        if "title" in self._open:
            self.title += data
        if "h1" in self._open:
            self.h1 += data
        if "td" in self._open and self.rows and self.rows[-1].cells:
            self.rows[-1].cells[-1] += data

    def entry_links(self) -> list[Link]:
        return [link for row in self.rows for link in row.links if has_class(link, "entry")]


def has_class(link: Link, name: str) -> bool:
    return name in (link.attrs.get("class") or "").split()


def render(url_path: str = "/docs/", entries: list[Entry] | None = None, **kw: object) -> Page:
    return Page(render_listing(url_path, entries or [], **kw))  # type: ignore[arg-type]


def file(name: str, size: int = 10, mtime: float = 1_700_000_000.0) -> Entry:
    return Entry(name, False, size, mtime)


def folder(name: str, mtime: float = 1_700_000_000.0) -> Entry:
    return Entry(name, True, 0, mtime)


# -- order and links -----------------------------------------------------------------------------


def test_folders_come_first_then_files_each_by_name_ignoring_case_then_exactly() -> None:
    entries = [file("b"), file("B"), folder("Zdir"), file("a"), file("C"), folder("adir")]
    entries += [file("_x"), folder("Adir")]
    page = render(entries=entries)
    assert [link.text for link in page.entry_links()] == [
        "Adir/",
        "adir/",
        "Zdir/",
        "_x",
        "a",
        "B",
        "b",
        "C",
    ]
    kinds = [has_class(link, "dir") for link in page.entry_links()]
    assert kinds == [True, True, True, False, False, False, False, False]


@pytest.mark.parametrize("name", TRICKY_NAMES)
@pytest.mark.parametrize("is_dir", [False, True])
def test_tricky_names_give_working_links_and_exact_text(name: str, is_dir: bool) -> None:
    url_path = "/docs/a b/"
    page = render(url_path, [Entry(name, is_dir, 5, 0.0)])
    (link,) = page.entry_links()
    href = str(link.attrs["href"])
    # Only unreserved characters and escapes: no scheme, no query, no fragment, no "../".
    assert re.fullmatch(r"[A-Za-z0-9._~%-]+/?", href), href
    assert href.endswith("/") == is_dir
    assert unquote(href.rstrip("/")) == name
    # Resolved against the page's URL, the link points inside the folder.
    page_url = "http://example.invalid" + quote(url_path)
    resolved = urlsplit(urljoin(page_url, href))
    assert (resolved.query, resolved.fragment) == ("", "")
    assert unquote(resolved.path) == url_path + name + ("/" if is_dir else "")
    assert link.text == name + ("/" if is_dir else "")
    assert set(link.attrs) == {"class", "href"}


def test_no_raw_markup_from_names_or_path_reaches_the_page() -> None:
    evil = '<script>alert("x")</script>'
    out = render_listing(f"/{evil}/", [file(evil), folder(evil), file("a'b\"c&d")])
    assert b"<script" not in out.lower()
    assert b"&lt;script&gt;" in out
    page = Page(out)
    assert page.title == f"Index of /{evil}/"
    assert [tag for tag, _ in page.tags if tag == "script"] == []


def test_names_that_are_not_valid_utf8_link_to_their_bytes() -> None:
    name = b"caf\xe9 \xff.txt".decode("utf-8", "surrogateescape")  # as os.listdir gives it
    out = render_listing("/", [file(name)])
    (link,) = Page(out).entry_links()
    assert unquote_to_bytes(str(link.attrs["href"])) == b"caf\xe9 \xff.txt"
    assert link.text == "caf\ufffd \ufffd.txt"


def test_control_characters_in_names_are_not_sent_raw() -> None:
    out = render_listing("/", [file("bell\x07 esc\x1b nl\n c1\x85.txt")])
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", out)
    (link,) = Page(out).entry_links()
    assert link.text == "bell\ufffd esc\ufffd nl\ufffd c1\ufffd.txt"
    assert unquote(str(link.attrs["href"])) == "bell\x07 esc\x1b nl\n c1\x85.txt"


def test_dot_entries_are_not_listed() -> None:
    page = render(entries=[folder("."), folder(".."), file(".hidden")])
    assert [link.text for link in page.entry_links()] == [".hidden"]


@given(
    names=st.lists(
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/\x00"), min_size=1)
        | st.binary(min_size=1, max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape")),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    dirs=st.lists(st.booleans(), min_size=8, max_size=8),
)
@FAST
def test_any_names_give_one_link_each_that_finds_the_name(
    names: list[str], dirs: list[bool]
) -> None:
    names = [name for name in names if name not in (".", "..")]
    entries = [Entry(name, is_dir, 1, 0.0) for name, is_dir in zip(names, dirs, strict=False)]
    out = render_listing("/x/", entries)
    out.decode("utf-8")
    page = Page(out)
    links = page.entry_links()
    assert len(links) == len(entries)
    found = set()
    for link in links:
        href = str(link.attrs["href"])
        assert re.fullmatch(r"[A-Za-z0-9._~%-]+/?", href), href
        found.add(unquote_to_bytes(href.rstrip("/")).decode("utf-8", "surrogateescape"))
    assert found == set(names)


# -- parent link and breadcrumb --------------------------------------------------------------------


def test_parent_link_is_there_below_the_root() -> None:
    page = render("/docs/a b/", [file("x")])
    parents = [link for row in page.rows for link in row.links if has_class(link, "parent")]
    assert [link.attrs["href"] for link in parents] == ["../"]
    assert page.rows[0].attrs.get("class") == "parent"  # the first row
    assert not any(has_class(link, "entry") for link in parents)


def test_no_parent_link_at_the_root() -> None:
    page = render("/", [file("x")])
    assert not [link for row in page.rows for link in row.links if has_class(link, "parent")]
    assert "../" not in page.text


def test_title_and_breadcrumb_show_the_path_and_link_each_ancestor() -> None:
    url_path = "/docs/a b/c&d/"
    page = render(url_path)
    assert page.title == f"Index of {url_path}"
    assert page.h1 == f"Index of {url_path}"
    page_url = "http://example.invalid" + quote(url_path)
    targets = [
        unquote(urlsplit(urljoin(page_url, str(c.attrs["href"]))).path) for c in page.breadcrumb
    ]
    assert targets == ["/", "/docs/", "/docs/a b/"]
    assert [c.text for c in page.breadcrumb] == ["/", "docs/", "a b/"]


def test_root_breadcrumb_has_no_links() -> None:
    page = render("/")
    assert page.breadcrumb == []
    assert page.h1 == "Index of /"


@pytest.mark.parametrize("url_path", ["", "docs/", "/docs", "docs"])
def test_url_path_must_start_and_end_with_a_slash(url_path: str) -> None:
    with pytest.raises(ValueError):
        render_listing(url_path, [])


# -- sizes and times -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024 - 1, "1.0 MiB"),
        (10 * 1024 * 1024, "10.0 MiB"),
        (int(2.25 * 1024**3), "2.2 GiB"),
        (1024**4, "1024.0 GiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("mtime", "text"),
    [
        (0.0, "1970-01-01 00:00"),
        (59.9, "1970-01-01 00:00"),
        (1_700_000_000.0, "2023-11-14 22:13"),
        (-1.0, "1969-12-31 23:59"),
        (math.nan, ""),
        (math.inf, ""),
        (1e20, ""),
    ],
)
def test_format_mtime_is_utc_to_the_minute(mtime: float, text: str) -> None:
    assert format_mtime(mtime) == text


def test_rows_show_size_and_time_and_folders_no_size() -> None:
    page = render("/", [file("f", 1536, 1_700_000_000.0), folder("d", 0.0)])
    folder_row, file_row = page.rows
    assert folder_row.cells == ["d/", "", "1970-01-01 00:00"]
    assert file_row.cells == ["f", "1.5 KiB", "2023-11-14 22:13"]
    assert "dir" in str(folder_row.attrs["class"])


def test_an_empty_folder_says_so() -> None:
    page = render("/", [])
    assert page.entry_links() == []
    assert "This folder is empty." in page.text
    assert "0 folders, 0 files" in page.text


def test_footer_counts_folders_and_files() -> None:
    page = render("/", [folder("a"), file("b"), file("c")])
    assert "1 folder, 2 files" in page.text


# -- the upload form -----------------------------------------------------------------------------


def test_upload_form_when_asked() -> None:
    page = render(upload_form=True)
    tag, form = page.by_id["upload"]
    assert tag == "form"
    assert str(form["method"]).lower() == "post"
    assert form["enctype"] == "multipart/form-data"
    assert "action" not in form  # no action: the form posts to the page's own URL
    tag, file_input = page.by_id["upload-files"]
    assert tag == "input"
    assert (file_input["type"], file_input["name"]) == ("file", "file")
    assert "multiple" in file_input
    labels = [attrs for tag, attrs in page.tags if tag == "label"]
    assert [label.get("for") for label in labels] == ["upload-files"]
    assert any(tag == "button" and attrs.get("type") == "submit" for tag, attrs in page.tags)


def test_upload_action_is_escaped_into_the_form() -> None:
    page = render(upload_form=True, upload_action='/up?x="1"&y=<2>')
    assert page.by_id["upload"][1]["action"] == '/up?x="1"&y=<2>'


def test_no_upload_form_by_default() -> None:
    page = render()
    assert "upload" not in page.by_id and "upload-files" not in page.by_id
    assert not [tag for tag, _ in page.tags if tag in ("form", "input")]


# -- the page as a whole -------------------------------------------------------------------------


def test_page_is_utf8_html_for_phones_and_both_colour_schemes() -> None:
    out = render_listing("/naïve/", [file("日本語.txt")], upload_form=True)
    text = out.decode("utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = Page(out)
    metas = [attrs for tag, attrs in page.tags if tag == "meta"]
    assert {"charset": "utf-8"} in metas
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
    assert "@media (prefers-color-scheme:dark)" in text
    assert "@media (max-width" in text
    assert page.by_id["listing"][0] == "table"


def test_page_needs_nothing_from_outside() -> None:
    out = render_listing("/a/", [file(n) for n in TRICKY_NAMES] + [folder("d")], upload_form=True)
    assert b"http" not in out.lower()
    assert b"//" not in out.replace(b"<!DOCTYPE", b"")
    page = Page(out)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert all("src" not in attrs for _, attrs in page.tags)
    assert b"url(" not in out and b"@import" not in out
