"""Request path to file: the traversal suite, the symlink policies and a property.

One tree for the whole module (built once, read only): a root with files, a subfolder,
dot-files, links that stay inside and links that leave it, next to a sibling folder
outside the root that holds the secret every escape would reach.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.apps.static import paths
from treadle.apps.static.paths import (
    MAX_NAME_CHARS,
    MappedPath,
    PathRefused,
    decode_segments,
    is_windows_alias,
    map_path,
)


class Tree:
    """The served tree: ``base`` holds ``root`` (served) and ``outside`` (never served)."""

    def __init__(self, base: Path) -> None:
        self.base = str(base)
        outside = base / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("secret")
        served = base / "root"
        served.mkdir()
        for name in ["index.html", "hello.txt", "café.txt", "file.", "file ", "%2e%2e"]:
            (served / name).write_text(name)
        (served / "sub").mkdir()
        (served / "sub" / "page.html").write_text("page")
        (served / "C:").mkdir()
        (served / ".env").write_text("KEY=1")
        (served / ".git").mkdir()
        (served / ".git" / "config").write_text("[core]")
        (served / "in_link").symlink_to("hello.txt")
        (served / "in_dir_link").symlink_to("sub")
        (served / "sub" / "up_link").symlink_to("../hello.txt")
        (served / "root_link").symlink_to(".")
        (served / "out_link").symlink_to("../outside/secret.txt")
        (served / "abs_out_link").symlink_to(outside / "secret.txt")
        (served / "out_dir_link").symlink_to("../outside")
        (served / "sub" / "deep_out_link").symlink_to("../../outside")
        (served / "dangling_out").symlink_to("../outside/missing")
        (served / "loop").symlink_to("loop")
        self.root = os.path.realpath(served)
        self.outside = os.path.realpath(outside)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return Tree(tmp_path_factory.mktemp("static"))


def expect(tree: Tree, raw: bytes, expected: int | tuple[str, ...], **options: object) -> None:
    """Map ``raw`` and check the outcome: a refusal with that status, or those segments."""
    if isinstance(expected, int):
        with pytest.raises(PathRefused) as caught:
            map_path(tree.root, raw, **options)  # type: ignore[arg-type]
        assert caught.value.status == expected, caught.value.reason
        assert tree.base not in caught.value.reason
        assert str(caught.value) == caught.value.reason
    else:
        mapped = map_path(tree.root, raw, **options)  # type: ignore[arg-type]
        assert mapped.segments == expected
        assert mapped.fs_path == os.path.join(tree.root, *expected)


# Each shape: raw request path -> refused with a status, or the segments it maps to.
TRAVERSAL_CASES: list[tuple[bytes, int | tuple[str, ...]]] = [
    # ordinary requests
    (b"/", ()),
    (b"/hello.txt", ("hello.txt",)),
    (b"/sub/page.html", ("sub", "page.html")),
    (b"/sub/", ("sub",)),
    (b"/sub/page.html/", ("sub", "page.html")),
    (b"/missing/deeper/file", ("missing", "deeper", "file")),
    # plain dot-dot
    (b"/../", 404),
    (b"/..", 404),
    (b"/../../etc/passwd", 404),
    (b"/../outside/secret.txt", 404),
    (b"/sub/../../outside/secret.txt", 404),
    (b"/a/../b", 404),
    # single dots are refused too, not normalised away
    (b"/./", 404),
    (b"/a/./b", 404),
    (b"/sub/.", 404),
    # encoded dot-dot, in every case mix
    (b"/%2e%2e/outside/secret.txt", 404),
    (b"/%2E%2E/outside/secret.txt", 404),
    (b"/%2E%2e/outside/secret.txt", 404),
    (b"/.%2e/outside/secret.txt", 404),
    (b"/%2e./outside/secret.txt", 404),
    (b"/sub/%2e", 404),
    # encoded separators never separate
    (b"/%2e%2e%2foutside%2fsecret.txt", 404),
    (b"/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404),
    (b"/..%2foutside/secret.txt", 404),
    (b"/..%2Foutside/secret.txt", 404),
    (b"/sub%2fpage.html", 404),
    (b"/sub%2Fpage.html", 404),
    (b"/%2fetc%2fpasswd", 404),
    # backslashes, plain or encoded
    (b"/..%5coutside%5csecret.txt", 404),
    (b"/..%5Coutside/secret.txt", 404),
    (b"/%5c..%5csecret.txt", 404),
    (b"/..\\outside\\secret.txt", 404),
    (b"/sub\\page.html", 404),
    # NUL and other controls
    (b"/hello.txt%00.html", 400),
    (b"/hello.txt\x00.html", 400),
    (b"/%00", 400),
    (b"/a%0ab", 400),
    (b"/a%0d%0aSet-Cookie:x", 400),
    (b"/a%7fb", 400),
    (b"/a\tb", 400),
    (b"/a%c2%85b", 400),  # U+0085, a C1 control
    # overlong and otherwise invalid UTF-8
    (b"/%c0%ae%c0%ae/outside/secret.txt", 400),
    (b"/%c0%af", 400),
    (b"/%e0%80%ae%e0%80%ae/outside", 400),
    (b"/%ed%a0%80", 400),  # a lone surrogate
    (b"/%ff", 400),
    (b"/\xff.txt", 400),
    (b"/caf%C3", 400),  # cut short
    # malformed escapes
    (b"/%zz", 400),
    (b"/%4", 400),
    (b"/a%", 400),
    (b"/%%32%65", 400),
    # decoded exactly once: %25 is a literal percent sign
    (b"/%252e%252e", ("%2e%2e",)),
    (b"/%252e%252e/outside/secret.txt", ("%2e%2e", "outside", "secret.txt")),
    (b"/%252e%252e%252f", ("%2e%2e%2f",)),
    # empty segments collapse, and cannot start an absolute path
    (b"//etc/passwd", ("etc", "passwd")),
    (b"//", ()),
    (b"/sub//page.html", ("sub", "page.html")),
    # not an origin-form path at all
    (b"http://x/..", 400),
    (b"http://x/hello.txt", 400),
    (b"*", 400),
    (b"", 400),
    (b"hello.txt", 400),
    (b"\\hello.txt", 400),
    # sizes
    (b"/" + b"a" * (MAX_NAME_CHARS + 1), 404),
    (b"/" + b"a" * MAX_NAME_CHARS, ("a" * MAX_NAME_CHARS,)),
    (b"/a" * 2000, ("a",) * 2000),
    # symbolic links
    (b"/in_link", ("in_link",)),
    (b"/in_dir_link/page.html", ("in_dir_link", "page.html")),
    (b"/sub/up_link", ("sub", "up_link")),
    (b"/root_link/hello.txt", ("root_link", "hello.txt")),
    (b"/loop", ("loop",)),  # resolves inside; opening it fails, which is the caller's 404
    (b"/out_link", 404),
    (b"/abs_out_link", 404),
    (b"/dangling_out", 404),
    (b"/out_dir_link/secret.txt", 404),
    (b"/out_dir_link/", 404),
    (b"/out_dir_link/missing/deeper", 404),
    (b"/sub/deep_out_link/secret.txt", 404),
    (b"/in_dir_link/deep_out_link/secret.txt", 404),
    (b"/root_link/out_link", 404),
    # hidden names
    (b"/.env", 404),
    (b"/.git/config", 404),
    (b"/.git/", 404),
    (b"/%2eenv", 404),
    (b"/%2Eenv", 404),
    (b"/sub/.hidden", 404),
    (b"/...", 404),
    # names that are only odd: plain names on POSIX, served under the root
    (b"/file.", ("file.",)),
    (b"/file%20", ("file ",)),
    (b"/C:/Windows/win.ini", ("C:", "Windows", "win.ini")),
    (b"/C%3a%5cWindows", 404),
    (b"/caf%C3%A9.txt", ("café.txt",)),
    (b"/caf%c3%a9.txt", ("café.txt",)),
    (b"/caf\xc3\xa9.txt", ("café.txt",)),
    (b"/%e2%80%ae", ("\u202e",)),  # a bidi override is a character, not a control
    (b"/a%3fb", ("a?b",)),
    (b"/%7e", ("~",)),
]


@pytest.mark.skipif(os.name == "nt", reason="the tree uses POSIX names and links")
@pytest.mark.parametrize(("raw", "expected"), TRAVERSAL_CASES)
def test_traversal_shapes(tree: Tree, raw: bytes, expected: int | tuple[str, ...]) -> None:
    expect(tree, raw, expected)


def test_the_table_is_large_and_has_no_duplicates() -> None:
    raws = [raw for raw, _ in TRAVERSAL_CASES]
    assert len(set(raws)) == len(raws)
    assert len(raws) >= 40


@pytest.mark.parametrize(
    ("raw", "segments", "trailing_slash"),
    [
        (b"/", (), True),
        (b"//", (), True),
        (b"/a", ("a",), False),
        (b"/a/", ("a",), True),
        (b"/a//", ("a",), True),
    ],
)
def test_decode_segments_reports_the_trailing_slash(
    raw: bytes, segments: tuple[str, ...], trailing_slash: bool
) -> None:
    assert decode_segments(raw) == (segments, trailing_slash)


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"/a%2fb/", 404), (b"/..", 404), (b"/%00", 400), (b"*", 400), (b"/%c0%ae", 400)],
)
def test_decode_segments_refuses_without_a_filesystem(raw: bytes, status: int) -> None:
    with pytest.raises(PathRefused) as caught:
        decode_segments(raw)
    assert caught.value.status == status


def test_a_mapped_path_keeps_the_trailing_slash(tree: Tree) -> None:
    assert map_path(tree.root, b"/sub/") == MappedPath(
        os.path.join(tree.root, "sub"), ("sub",), True
    )
    assert map_path(tree.root, b"/") == MappedPath(tree.root, (), True)
    assert map_path(tree.root, b"/hello.txt").trailing_slash is False


def test_the_fs_path_keeps_links_unresolved(tree: Tree) -> None:
    mapped = map_path(tree.root, b"/in_dir_link/page.html")
    assert mapped.fs_path == os.path.join(tree.root, "in_dir_link", "page.html")
    assert os.path.realpath(mapped.fs_path) == os.path.join(tree.root, "sub", "page.html")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/hello.txt", ("hello.txt",)),
        (b"/sub/page.html", ("sub", "page.html")),
        (b"/missing/file", ("missing", "file")),
        (b"/hello.txt/below", ("hello.txt", "below")),  # not a folder: nothing below
        (b"/in_link", 404),
        (b"/in_dir_link/page.html", 404),
        (b"/sub/up_link", 404),
        (b"/root_link/hello.txt", 404),
        (b"/loop", 404),
        (b"/out_link", 404),
        (b"/dangling_out", 404),
        (b"/out_dir_link/missing", 404),
        (b"/../hello.txt", 404),
    ],
)
def test_symlinks_none_refuses_every_link(
    tree: Tree, raw: bytes, expected: int | tuple[str, ...]
) -> None:
    expect(tree, raw, expected, symlinks="none")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/out_link", ("out_link",)),
        (b"/abs_out_link", ("abs_out_link",)),
        (b"/out_dir_link/secret.txt", ("out_dir_link", "secret.txt")),
        (b"/in_link", ("in_link",)),
        # following links does not relax anything else
        (b"/../outside/secret.txt", 404),
        (b"/%2e%2e/outside/secret.txt", 404),
        (b"/out_dir_link%2fsecret.txt", 404),
        (b"/.env", 404),
        (b"/%00", 400),
    ],
)
def test_symlinks_all_follows_any_link(
    tree: Tree, raw: bytes, expected: int | tuple[str, ...]
) -> None:
    expect(tree, raw, expected, symlinks="all")


def test_symlinks_all_really_leads_outside(tree: Tree) -> None:
    mapped = map_path(tree.root, b"/out_dir_link/secret.txt", symlinks="all")
    assert os.path.realpath(mapped.fs_path) == os.path.join(tree.outside, "secret.txt")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/.env", (".env",)),
        (b"/.git/config", (".git", "config")),
        (b"/%2eenv", (".env",)),
        (b"/...", ("...",)),
        # dot-segments are never names, whatever the option
        (b"/.", 404),
        (b"/..", 404),
        (b"/%2e", 404),
        (b"/%2e%2e/outside/secret.txt", 404),
        (b"/.git/../../outside/secret.txt", 404),
    ],
)
def test_allow_dotfiles(tree: Tree, raw: bytes, expected: int | tuple[str, ...]) -> None:
    expect(tree, raw, expected, allow_dotfiles=True)


def test_an_unknown_policy_is_our_bug_not_a_refusal(tree: Tree) -> None:
    with pytest.raises(ValueError):
        map_path(tree.root, b"/hello.txt", symlinks="some")  # type: ignore[arg-type]


@pytest.mark.parametrize("symlinks", ["inside", "all", "none"])
@pytest.mark.parametrize("allow_dotfiles", [False, True])
def test_no_reason_names_the_root(tree: Tree, symlinks: str, allow_dotfiles: bool) -> None:
    refused = 0
    for raw, _ in TRAVERSAL_CASES:
        try:
            map_path(
                tree.root,
                raw,
                allow_dotfiles=allow_dotfiles,
                symlinks=symlinks,  # type: ignore[arg-type]
            )
        except PathRefused as err:
            refused += 1
            assert err.status in (400, 404)
            assert tree.base not in err.reason
            assert "/" + os.path.basename(tree.base) not in err.reason
            assert "\n" not in err.reason and err.reason
    assert refused > 30


@pytest.mark.parametrize(
    ("segment", "alias"),
    [
        ("C:", True),
        ("c:", True),
        ("file.txt::$DATA", True),
        ("file.", True),
        ("file ", True),
        (".env.", True),
        ("CON", True),
        ("con.txt", True),
        ("Nul", True),
        ("COM1", True),
        ("lpt9.log", True),
        ("GIT~1", True),
        ("PROGRA~1", True),
        ("hello.txt", False),
        ("console.txt", False),
        ("com10", False),
        ("a~b", False),
        ("café.txt", False),
    ],
)
def test_windows_aliases(segment: str, alias: bool) -> None:
    assert is_windows_alias(segment) is alias


def test_windows_aliases_are_refused_on_windows(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "_ON_WINDOWS", True)
    for raw in [b"/C:/Windows/win.ini", b"/file.", b"/file%20", b"/CON", b"/GIT~1/config"]:
        expect(tree, raw, 404)
    expect(tree, b"/hello.txt", ("hello.txt",))


def test_a_root_of_slash_joins_without_a_double_slash() -> None:
    mapped = map_path(os.sep, b"/etc/hostname", symlinks="all")
    assert mapped.fs_path == os.sep + "etc" + os.sep + "hostname"


# --- properties ------------------------------------------------------------------------

# Pieces a traversal is made of, plus the names of the tree's links and files.
TRAVERSAL_PIECES = [
    ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "\\", "/", "//", "%00", "%", "%25",
    "%c0%ae", "%e0%80%ae", "a", "sub", "hello.txt", ".env", "outside", "secret.txt",
    "in_link", "in_dir_link", "root_link", "out_link", "abs_out_link", "out_dir_link",
    "deep_out_link", "dangling_out", "loop", "missing", "C:", "~",
]  # fmt: skip

traversal_paths = st.one_of(
    st.lists(st.sampled_from(TRAVERSAL_PIECES), max_size=12).map(
        lambda pieces: ("/" + "".join(pieces)).encode()
    ),
    st.text(alphabet="./%2efF5cC\\a", max_size=40).map(lambda text: ("/" + text).encode()),
    st.binary(max_size=40).map(lambda data: b"/" + data),
    st.binary(max_size=20),
)


def resolves_inside(root: str, fs_path: str) -> bool:
    real = os.path.realpath(fs_path)
    return real == root or real.startswith(root + os.sep)


@pytest.mark.skipif(os.name == "nt", reason="the tree uses POSIX names and links")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=traversal_paths, allow_dotfiles=st.booleans())
def test_inside_never_resolves_outside(tree: Tree, raw: bytes, allow_dotfiles: bool) -> None:
    try:
        mapped = map_path(tree.root, raw, allow_dotfiles=allow_dotfiles)
    except PathRefused as err:
        assert err.status in (400, 404)
        assert tree.base not in err.reason
        return
    assert resolves_inside(tree.root, mapped.fs_path)
    assert mapped.fs_path == os.path.join(tree.root, *mapped.segments)


@pytest.mark.skipif(os.name == "nt", reason="the tree uses POSIX names and links")
@settings(max_examples=200, deadline=None)
@given(raw=traversal_paths)
def test_none_never_passes_a_link(tree: Tree, raw: bytes) -> None:
    try:
        mapped = map_path(tree.root, raw, symlinks="none")
    except PathRefused:
        return
    path = tree.root
    for segment in mapped.segments:
        path = os.path.join(path, segment)
        assert not os.path.islink(path)


plain_names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=20
).filter(lambda name: name not in (".", "..") and "/" not in name and "\\" not in name)


@given(names=st.lists(plain_names, max_size=6), trailing=st.booleans())
def test_decoding_undoes_percent_encoding(names: list[str], trailing: bool) -> None:
    raw = ("/" + "/".join(quote(name, safe="") for name in names)).encode("ascii")
    if trailing and names:
        raw += b"/"
    segments, trailing_slash = decode_segments(raw)
    assert segments == tuple(names)
    assert trailing_slash is (trailing or not names)
