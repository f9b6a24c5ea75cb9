"""One table of settings: it feeds the command line, the environment and the docs.

Each ``Setting`` says its name, type, default and why it exists. The CLI builds its
options from the table (``--idle-timeout``), the environment is read from the same
names (``TREADLE_IDLE_TIMEOUT``), and ``docs/configuration.md`` is generated from it
(``python -m treadle.config``), so the three cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

POLLER_CHOICES = ("auto", "select", "poll", "epoll", "epoll-et")
SYMLINK_CHOICES = ("inside", "all", "none")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
INTERFACES = ("auto", "wsgi", "native")


class SettingError(ValueError):
    """A setting's value is not acceptable; the message is one line for the user."""


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < 1e9:  # also refuses nan and inf: a deadline must be reachable
        raise ValueError("must be greater than 0 (and finite)")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(text: str) -> bool:
    """On or off; the command line has ``--NAME`` and ``--no-NAME`` for it."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


def _text(text: str) -> str:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValueError("must not hold control characters")
    return text


def parse_mount(text: str) -> tuple[str, str]:
    """``PREFIX=DIR`` to ``(prefix, dir)``: the prefix starts with ``/`` and loses any
    trailing ``/``; DIR is kept as given (the application checks that it exists)."""
    prefix, sep, folder = text.partition("=")
    prefix = prefix.strip()
    if not sep or not folder:
        raise ValueError(f"expected PREFIX=DIR, got {text!r}")
    if not prefix.startswith("/") or any(ch in prefix for ch in "?#%\\"):
        raise ValueError(f"the prefix must be a plain URL path starting with '/', got {prefix!r}")
    return prefix.rstrip("/") or "/", folder


def _root_path(text: str) -> str:
    """A URL path prefix such as ``/app`` (trailing ``/`` dropped; ``/`` alone is none)."""
    text = _text(text.strip())
    if not text:
        return ""
    if not text.startswith("/") or any(ch in text for ch in "?#%\\"):
        raise ValueError(f"expected a URL path starting with '/', got {text!r}")
    return text.rstrip("/")


def _mount(text: str) -> str:
    parse_mount(text)
    return text


def _size(text: str) -> int:
    """Bytes, with an optional K, M or G suffix (powers of 1024)."""
    text = text.strip()
    scale = 1
    suffix = text[-1:].upper()
    if suffix in ("K", "M", "G"):
        scale = 1024 ** ("KMG".index(suffix) + 1)
        text = text[:-1]
    value = int(text) * scale
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT`` to ``(host, port)``."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"expected [IPV6]:PORT, got {text!r}")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid port in {text!r}")
    return host or "0.0.0.0", int(port)


def _bind(text: str) -> str:
    parse_bind(text)
    return text


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text

    return convert


@dataclass(frozen=True)
class Setting:
    """One configurable value."""

    name: str
    convert: Callable[[str], Any]
    default: Any
    help: str
    metavar: str = ""
    choices: tuple[str, ...] = ()
    #: repeatable on the command line (a list)
    multiple: bool = False
    #: on or off: ``--NAME`` / ``--no-NAME`` on the command line
    boolean: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "TREADLE_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("bind", _bind, ["127.0.0.1:8000"], "address to listen on: HOST:PORT or [IPV6]:PORT; "
            "repeat for several", "ADDR", multiple=True),
    Setting("interface", _choice(INTERFACES), "auto", "how the application is called: wsgi "
            "(environ, start_response), native (request), or auto: told by its signature",
            choices=INTERFACES),
    Setting("poller", _choice(POLLER_CHOICES), "auto", "I/O multiplexing backend; auto picks "
            "the best this platform has", choices=POLLER_CHOICES),
    Setting("log_level", _choice(LOG_LEVELS), "info", "logging threshold", choices=LOG_LEVELS),
    Setting("backlog", _positive_int, 1024, "listen queue length", "N"),
    Setting("header_timeout", _positive_float, 10.0, "seconds from a request's first byte to "
            "the end of its head; past it: 408 and close (cuts slowloris clients)", "S"),
    Setting("body_timeout", _positive_float, 30.0, "seconds without a byte of a request body; "
            "past it: 408 and close", "S"),
    Setting("idle_timeout", _positive_float, 5.0, "seconds a keep-alive connection may wait "
            "for its next request; past it: closed quietly", "S"),
    Setting("write_timeout", _positive_float, 30.0, "seconds without progress writing to a "
            "client that does not read; past it: closed", "S"),
    Setting("max_request_line", _size, 8 * 1024, "longest request line (414 past it)", "BYTES"),
    Setting("max_header_bytes", _size, 64 * 1024, "largest header section (431 past it)",
            "BYTES"),
    Setting("max_header_count", _positive_int, 100, "most header fields (431 past it)", "N"),
    Setting("max_body_bytes", _size, 100 * 1024 * 1024, "largest request body (413 past it)",
            "BYTES"),
    Setting("body_buffer_bytes", _size, 1024 * 1024, "request bodies up to this size are "
            "handed to native handlers whole; larger ones are streamed", "BYTES"),
    Setting("requests_per_turn", _positive_int, 32, "most requests one connection may have "
            "handled per loop turn (fairness between connections)", "N"),
    Setting("read_bytes_per_turn", _size, 256 * 1024, "most bytes read from one connection "
            "per loop turn (fairness between connections)", "BYTES"),
    Setting("write_high_water", _size, 256 * 1024, "unsent output above which a connection "
            "stops reading (backpressure)", "BYTES"),
    Setting("write_low_water", _size, 64 * 1024, "unsent output below which it reads again",
            "BYTES"),
    # -- serving files (treadle serve DIR, and --static beside an application)
    Setting("static", _mount, [], "serve the folder DIR under the URL prefix PREFIX beside "
            "the application (repeatable); requests under it never reach the application",
            "PREFIX=DIR", multiple=True),
    Setting("listing", _boolean, True, "show an HTML listing of a folder without "
            "index.html (off: 404)", boolean=True),
    Setting("upload", _boolean, False, "accept uploads: PUT of a file, and a form on listing "
            "pages that POSTs multipart/form-data (limited by --max-body-bytes)", boolean=True),
    Setting("overwrite", _boolean, False, "let an upload replace an existing file",
            boolean=True),
    Setting("dotfiles", _boolean, False, "serve names that start with a dot (.git, .env); "
            "off: 404", boolean=True),
    Setting("symlinks", _choice(SYMLINK_CHOICES), "inside", "symbolic links to follow: inside "
            "(only those whose target stays inside the folder), all, or none",
            choices=SYMLINK_CHOICES),
    Setting("cache_control", _text, "", "Cache-Control value for files (empty: none sent), "
            "e.g. 'public, max-age=3600'", "VALUE"),
    Setting("file_cache_entries", _non_negative_int, 1024, "files whose descriptor, stat and "
            "response fields are kept open and ready (0: none)", "N"),
    Setting("file_cache_valid", _positive_float, 1.0, "seconds a cached file is trusted "
            "before it is stat()ed again (a change shows within this time)", "S"),
    # -- WSGI applications (treadle run MODULE:ATTR)
    Setting("threads", _non_negative_int, 8, "worker threads that run a WSGI application, "
            "started as load asks for them (0: inline on the loop thread, for an application "
            "that never blocks)", "N"),
    Setting("queue_size", _non_negative_int, 1024, "WSGI requests that may wait for a free "
            "worker thread; past it they are answered 503 with Retry-After", "N"),
    Setting("root_path", _root_path, "", "URL path a WSGI application is mounted at (its "
            "SCRIPT_NAME, e.g. /app); a path under it reaches the application without it "
            "in PATH_INFO", "PATH"),
    Setting("chdir", _text, "", "folder to change to before importing the application "
            "(it goes first on the import path)", "DIR"),
)  # fmt: skip

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass
class Settings:
    """Resolved values: defaults, overridden by the environment, then by the CLI."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def resolve(
        cls,
        cli: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Merge defaults, ``TREADLE_*`` variables and CLI values (already converted).

        Raises SettingError naming the variable for a bad environment value.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            value = setting.default
            raw = environ.get(setting.env)
            if raw is not None:
                try:
                    if setting.multiple:
                        value = [setting.convert(part) for part in raw.split(",") if part.strip()]
                        if not value:  # a server that listens nowhere is never what was meant
                            raise ValueError("expected at least one value")
                    else:
                        value = setting.convert(raw)
                except ValueError as error:
                    raise SettingError(f"{setting.env}={raw!r}: {error}") from None
            if cli is not None and cli.get(setting.name) is not None:
                value = cli[setting.name]
            values[setting.name] = value
        if values["write_low_water"] > values["write_high_water"]:
            raise SettingError("write-low-water must not exceed write-high-water")
        return cls(values)


def settings_markdown() -> str:
    """The configuration reference, generated from the table."""
    lines = [
        "# Configuration",
        "",
        "Every setting is a command-line option and an environment variable; the option",
        "wins. Sizes take an optional K, M or G suffix. Generated by `python -m treadle.config`.",
        "",
        "| option | environment | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for setting in SETTINGS:
        default = setting.default
        if isinstance(default, list):
            default = ", ".join(default)
        flag = f"`{setting.flag}`"
        if setting.boolean:
            flag += f" / `--no-{setting.flag[2:]}`"
            default = "on" if default else "off"
        lines.append(f"| {flag} | `{setting.env}` | `{default}` | {setting.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
