"""The settings table: each converter accepts and refuses what it should; defaults, then
``TREADLE_*`` variables, then the command line; and the generated docs page is current."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from treadle.config import (
    SETTINGS,
    SETTINGS_BY_NAME,
    Setting,
    SettingError,
    Settings,
    parse_bind,
    parse_mount,
    settings_markdown,
)

ROOT = Path(__file__).resolve().parent.parent


def convert(name: str, text: str):
    return SETTINGS_BY_NAME[name].convert(text)


def _settings_of_kind(kind: str) -> list[str]:
    """Names of the settings whose converter is the given one (by its function name)."""
    return [s.name for s in SETTINGS if getattr(s.convert, "__name__", "") == kind]


SIZES = _settings_of_kind("_size")
POSITIVE_INTS = _settings_of_kind("_positive_int")
POSITIVE_FLOATS = _settings_of_kind("_positive_float")
BOOLEANS = _settings_of_kind("_boolean")
NON_NEGATIVE_INTS = _settings_of_kind("_non_negative_int")
TEXTS = _settings_of_kind("_text")
ROOT_PATHS = _settings_of_kind("_root_path")


def test_every_setting_is_classified_by_a_test():
    choices = [s.name for s in SETTINGS if s.choices]
    kinds = SIZES + POSITIVE_INTS + POSITIVE_FLOATS + BOOLEANS + NON_NEGATIVE_INTS + TEXTS
    kinds += ROOT_PATHS
    assert sorted(kinds + choices + ["bind", "static"]) == sorted(SETTINGS_BY_NAME)
    assert SIZES and POSITIVE_INTS and POSITIVE_FLOATS and BOOLEANS and NON_NEGATIVE_INTS
    assert ROOT_PATHS == ["root_path"]


def test_table_entries_are_well_formed():
    for setting in SETTINGS:
        assert isinstance(setting, Setting)
        assert setting.flag == "--" + setting.name.replace("_", "-")
        assert setting.env == "TREADLE_" + setting.name.upper()
        assert setting.help and not setting.help.endswith(".")
        # The default survives its own converter (as the environment would give it).
        default = setting.default
        if setting.multiple:
            assert [setting.convert(item) for item in default] == default
        else:
            assert setting.convert(str(default)) == default


# --------------------------------------------------------------------------- converters


@pytest.mark.parametrize("name", BOOLEANS)
@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("True", True),
     ("0", False), ("false", False), ("no", False), ("OFF", False), ("False", False)],
)  # fmt: skip
def test_booleans_accept(name, text, value):
    assert convert(name, text) is value


@pytest.mark.parametrize("name", BOOLEANS)
@pytest.mark.parametrize("text", ["", "2", "maybe", "enabled"])
def test_booleans_refuse(name, text):
    with pytest.raises(ValueError):
        convert(name, text)


@pytest.mark.parametrize("name", NON_NEGATIVE_INTS)
def test_non_negative_ints(name):
    assert convert(name, "0") == 0 and convert(name, "12") == 12
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(ValueError):
            convert(name, bad)


@pytest.mark.parametrize("name", TEXTS)
def test_texts_refuse_control_characters(name):
    assert convert(name, "public, max-age=60") == "public, max-age=60"
    for bad in ("a\r\nb", "x\x00", "\x7f"):
        with pytest.raises(ValueError):
            convert(name, bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [("", ""), ("/", ""), ("/app", "/app"), ("/app/", "/app"), (" /a/b ", "/a/b"),
     ("/caf\u00e9", "/caf\u00e9")],
)  # fmt: skip
def test_root_paths_accept(text, value):
    assert convert("root_path", text) == value


@pytest.mark.parametrize("text", ["app", "/a?b", "/a#b", "/a%20b", "/a\\b", "/a\r\nb", "http://x/"])
def test_root_paths_refuse(text):
    with pytest.raises(ValueError):
        convert("root_path", text)


def test_wsgi_settings_defaults():
    settings = Settings.resolve({}, environ={})
    assert settings.interface == "auto"
    assert SETTINGS_BY_NAME["interface"].choices == ("auto", "wsgi", "native")
    assert (settings.threads, settings.queue_size) == (8, 1024)
    assert (settings.root_path, settings.chdir) == ("", "")
    env = {"TREADLE_THREADS": "0", "TREADLE_QUEUE_SIZE": "0", "TREADLE_ROOT_PATH": "/app/"}
    settings = Settings.resolve({}, environ=env)
    assert (settings.threads, settings.queue_size, settings.root_path) == (0, 0, "/app")
    with pytest.raises(SettingError, match="TREADLE_THREADS"):
        Settings.resolve({}, environ={"TREADLE_THREADS": "-1"})


@pytest.mark.parametrize(
    ("text", "mount"),
    [("/assets=./public", ("/assets", "./public")), ("/a/b/=d", ("/a/b", "d")),
     ("/=site", ("/", "site")), (" /x=y=z", ("/x", "y=z"))],
)  # fmt: skip
def test_mounts_accept(text, mount):
    assert parse_mount(text) == mount
    assert convert("static", text) == text


@pytest.mark.parametrize("text", ["assets=./public", "/assets", "/assets=", "/a?b=c", "/a%2f=d",
                                  "=dir", "/a\\b=c"])  # fmt: skip
def test_mounts_refuse(text):
    with pytest.raises(ValueError):
        convert("static", text)


@pytest.mark.parametrize("name", SIZES)
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("4096", 4096),
        ("64K", 64 * 1024),
        ("64k", 64 * 1024),
        ("2M", 2 * 1024**2),
        ("1G", 1024**3),
        (" 8K ", 8 * 1024),
    ],
)
def test_sizes_accept(name, text, value):
    assert convert(name, text) == value


@pytest.mark.parametrize("name", SIZES)
@pytest.mark.parametrize("text", ["0", "-1", "0K", "", "K", "abc", "1.5K", "1T", "1KB", "ten"])
def test_sizes_refuse(name, text):
    with pytest.raises(ValueError):
        convert(name, text)


@pytest.mark.parametrize("name", POSITIVE_INTS)
@pytest.mark.parametrize(("text", "value"), [("1", 1), ("100", 100), (" 7 ", 7)])
def test_positive_ints_accept(name, text, value):
    assert convert(name, text) == value


@pytest.mark.parametrize("name", POSITIVE_INTS)
@pytest.mark.parametrize("text", ["0", "-5", "1.5", "", "1K", "many"])
def test_positive_ints_refuse(name, text):
    with pytest.raises(ValueError):
        convert(name, text)


@pytest.mark.parametrize("name", POSITIVE_FLOATS)
@pytest.mark.parametrize(("text", "value"), [("1", 1.0), ("0.25", 0.25), ("30", 30.0)])
def test_positive_floats_accept(name, text, value):
    assert convert(name, text) == value


@pytest.mark.parametrize("name", POSITIVE_FLOATS)
@pytest.mark.parametrize("text", ["0", "-1", "0.0", "", "nan", "soon", "1s"])
def test_positive_floats_refuse(name, text):
    with pytest.raises(ValueError):
        convert(name, text)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.choices], ids=lambda s: s.name)
def test_choices(setting):
    for choice in setting.choices:
        assert setting.convert(choice) == choice
    assert setting.default in setting.choices
    for bad in ("", "nope", setting.choices[0].upper() + "X"):
        with pytest.raises(ValueError, match="expected one of"):
            setting.convert(bad)


def test_poller_choices_are_the_poller_names():
    from treadle.poll import POLLER_NAMES

    assert SETTINGS_BY_NAME["poller"].choices == POLLER_NAMES


# -------------------------------------------------------------------------------- bind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        (":8000", ("0.0.0.0", 8000)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:8000", ("::1", 8000)),
        ("[::]:0", ("::", 0)),
        ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
        (" 127.0.0.1:1 ", ("127.0.0.1", 1)),
    ],
)
def test_bind_forms(text, expected):
    assert parse_bind(text) == expected
    assert convert("bind", text) == text


@pytest.mark.parametrize(
    "text",
    [
        "8000",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:http",
        "127.0.0.1:-1",
        "127.0.0.1:65536",
        "127.0.0.1:99999999",
        "::1:8000",  # IPv6 needs brackets
        "[::1]",
        "[::1]:",
        "[::1]8000",
        "[::1:8000",
        "",
    ],
)
def test_bind_refuses(text):
    with pytest.raises(ValueError):
        parse_bind(text)
    with pytest.raises(ValueError):
        convert("bind", text)


# --------------------------------------------------------------------------- resolving


def test_defaults_without_environment():
    settings = Settings.resolve({}, environ={})
    for setting in SETTINGS:
        assert getattr(settings, setting.name) == setting.default
    with pytest.raises(AttributeError):
        settings.no_such_setting  # noqa: B018


def test_environment_overrides_defaults():
    environ = {
        "TREADLE_IDLE_TIMEOUT": "2.5",
        "TREADLE_MAX_BODY_BYTES": "1M",
        "TREADLE_POLLER": "select",
        "TREADLE_BIND": "127.0.0.1:1,[::1]:2",
        "TREADLE_BACKLOG": "7",
        "UNRELATED": "x",
    }
    settings = Settings.resolve({}, environ=environ)
    assert settings.idle_timeout == 2.5
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.poller == "select"
    assert settings.bind == ["127.0.0.1:1", "[::1]:2"]
    assert settings.backlog == 7
    assert settings.header_timeout == SETTINGS_BY_NAME["header_timeout"].default


def test_command_line_overrides_environment():
    environ = {"TREADLE_IDLE_TIMEOUT": "2.5", "TREADLE_BIND": "127.0.0.1:1"}
    cli = {"idle_timeout": 9.0, "bind": ["127.0.0.1:2"], "backlog": None}
    settings = Settings.resolve(cli, environ=environ)
    assert settings.idle_timeout == 9.0
    assert settings.bind == ["127.0.0.1:2"]
    assert settings.backlog == 1024  # None means "not given"


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("TREADLE_WRITE_TIMEOUT", "12")
    assert Settings.resolve().write_timeout == 12.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TREADLE_IDLE_TIMEOUT", "0"),
        ("TREADLE_IDLE_TIMEOUT", ""),
        ("TREADLE_MAX_BODY_BYTES", "lots"),
        ("TREADLE_POLLER", "kqueue"),
        ("TREADLE_BIND", "nowhere"),
        ("TREADLE_BIND", "127.0.0.1:1,bad"),
        ("TREADLE_REQUESTS_PER_TURN", "-1"),
    ],
)
def test_bad_environment_value_names_the_variable(variable, value):
    with pytest.raises(SettingError) as caught:
        Settings.resolve({}, environ={variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r}: ")
    assert "\n" not in message


def test_empty_bind_list_from_the_environment_is_refused():
    """``TREADLE_BIND=`` (or only commas) would leave a server that listens nowhere."""
    for value in ("", ",", " "):
        with pytest.raises(SettingError, match="TREADLE_BIND"):
            Settings.resolve({}, environ={"TREADLE_BIND": value})


def test_low_water_above_high_water_is_refused():
    with pytest.raises(SettingError, match="write-low-water"):
        Settings.resolve({"write_low_water": 2048, "write_high_water": 1024}, environ={})
    with pytest.raises(SettingError):
        Settings.resolve(
            {}, environ={"TREADLE_WRITE_LOW_WATER": "1M", "TREADLE_WRITE_HIGH_WATER": "64K"}
        )
    equal = Settings.resolve({"write_low_water": 1024, "write_high_water": 1024}, environ={})
    assert equal.write_low_water == equal.write_high_water == 1024


# --------------------------------------------------------------------------------- docs


def test_markdown_lists_every_setting():
    text = settings_markdown()
    for setting in SETTINGS:
        flag = f"`{setting.flag}`"
        if setting.boolean:
            flag += f" / `--no-{setting.flag[2:]}`"
        assert f"| {flag} | `{setting.env}` |" in text
    assert text.endswith("\n")


def test_docs_page_is_generated_from_the_table():
    page = ROOT / "docs" / "configuration.md"
    assert page.read_text(encoding="utf-8") == settings_markdown(), (
        "docs/configuration.md is stale: regenerate it with "
        "`python -m treadle.config > docs/configuration.md`"
    )


def test_no_setting_default_is_nan_or_negative():
    for setting in SETTINGS:
        if isinstance(setting.default, (int, float)) and not setting.boolean:
            assert setting.default > 0 and not math.isnan(setting.default)


@pytest.mark.parametrize("text", ["inf", "nan", "1e400"])
def test_timeouts_must_be_finite(text: str) -> None:
    with pytest.raises(SettingError):
        Settings.resolve({}, environ={"TREADLE_IDLE_TIMEOUT": text})
