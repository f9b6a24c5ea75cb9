"""The ``treadle`` command, in-process: parsing, one-line errors with exit status 2 (1 for an
address that cannot be bound), loading MODULE:ATTR, and what reaches ``_serve``.

Serving itself is stubbed out here; tests/functional runs the real command."""

from __future__ import annotations

import socket
import sys
import textwrap

import pytest

from treadle import __version__, cli
from treadle.config import SETTINGS, SettingError, Settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    """No TREADLE_* variable from the outside, and sys.path restored afterwards."""
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def served(monkeypatch):
    """Replace ``_serve``: record what main would serve, and return 0."""
    calls: list[tuple[object, Settings]] = []

    def fake_serve(handler: object, settings: Settings, folder: str = "") -> int:
        calls.append((handler, settings))
        return 0

    monkeypatch.setattr(cli, "_serve", fake_serve)
    return calls


def _fails(capsys, argv, status: int = 2) -> str:
    """Run main(argv), expect exit ``status`` and one stderr line; return that line."""
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == status
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("treadle: error: ")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


# ------------------------------------------------------------------------------ parsing


def test_no_command_prints_help_and_returns_2(capsys):
    assert cli.main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "usage: treadle" in err and "run" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"treadle {__version__}"


def test_run_help_lists_every_setting(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for setting in SETTINGS:
        assert setting.flag in out
        assert setting.env in out


def test_parser_turns_every_flag_into_its_setting():
    argv = ["run", "treadle.demo:hello"]
    samples = {
        "bind": "127.0.0.1:0",
        "interface": "native",
        "poller": "select",
        "log_level": "debug",
        "static": "/assets=.",
        "symlinks": "none",
        "cache_control": "no-cache",
        "root_path": "/app",
        "chdir": "/tmp",
    }
    for setting in SETTINGS:
        if setting.boolean:
            argv += [setting.flag]
        elif setting.name in samples:
            argv += [setting.flag, samples[setting.name]]
        elif setting.convert.__name__ == "_positive_float":
            argv += [setting.flag, "1.5"]
        else:
            argv += [setting.flag, "2K" if setting.convert.__name__ == "_size" else "3"]
    args = cli.build_parser().parse_args(argv)
    assert args.command == "run"
    assert args.app == "treadle.demo:hello"
    assert args.bind == ["127.0.0.1:0"]
    assert args.poller == "select"
    assert args.idle_timeout == 1.5
    assert args.max_body_bytes == 2048
    assert args.backlog == 3
    assert args.static == ["/assets=."] and args.upload is True and args.symlinks == "none"
    assert args.threads == 3 and args.queue_size == 3 and args.root_path == "/app"


def test_options_not_given_are_none():
    args = cli.build_parser().parse_args(["run", "a:b"])
    for setting in SETTINGS:
        assert getattr(args, setting.name) is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run"], "MODULE:ATTR"),
        (["serve", "/no/such/folder"], "'/no/such/folder' is not a folder"),
        (["serve", ".", "--static", "/a=/no/such/folder"], "is not a folder"),
        (["serve", ".", "--symlinks", "some"], "expected one of inside, all, none"),
        (["launch", "a:b"], "invalid choice"),
        (["run", "a:b", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["run", "a:b", "--idle-timeout", "0"], "'0': must be greater than 0"),
        (["run", "a:b", "--idle-timeout", "soon"], "'soon'"),
        (["run", "a:b", "--idle-timeout"], "expected one argument"),
        (["run", "a:b", "--backlog", "-1"], "--backlog"),
        (["run", "a:b", "--max-body-bytes", "1X"], "'1X'"),
        (["run", "a:b", "--bind", "8000"], "expected HOST:PORT"),
        (["run", "a:b", "--bind", "[::1]"], "expected [IPV6]:PORT"),
        (["run", "a:b", "--bind", "127.0.0.1:70000"], "invalid port"),
        (["run", "a:b", "--poller", "kqueue"], "expected one of auto, select, poll"),
        (["run", "a:b", "--log-level", "loud"], "expected one of debug"),
        (["run", "a:b", "--interface", "asgi"], "expected one of auto, wsgi, native"),
        (["run", "a:b", "--threads", "-1"], "must not be negative"),
        (["run", "a:b", "--root-path", "app"], "expected a URL path starting with '/'"),
    ],
)
def test_bad_command_line_is_one_line_and_status_2(capsys, served, argv, expected):
    line = _fails(capsys, argv)
    assert expected in line
    assert served == []


def test_water_marks_checked_across_options(capsys, served):
    line = _fails(capsys, ["run", "a:b", "--write-low-water", "1M", "--write-high-water", "64K"])
    assert "write-low-water must not exceed write-high-water" in line


# ------------------------------------------------------------------ env and precedence


def test_bad_environment_value_is_one_line_and_status_2(capsys, served, monkeypatch):
    monkeypatch.setenv("TREADLE_IDLE_TIMEOUT", "0")
    line = _fails(capsys, ["run", "treadle.demo:hello"])
    assert line == "treadle: error: TREADLE_IDLE_TIMEOUT='0': must be greater than 0 (and finite)"


def test_environment_then_command_line(served, monkeypatch):
    from treadle.demo import hello

    monkeypatch.setenv("TREADLE_IDLE_TIMEOUT", "2")
    monkeypatch.setenv("TREADLE_HEADER_TIMEOUT", "3")
    monkeypatch.setenv("TREADLE_BIND", "127.0.0.1:1")
    argv = ["run", "treadle.demo:hello", "--idle-timeout", "9", "--bind", "127.0.0.1:2"]
    argv += ["--bind", "[::1]:3"]
    assert cli.main(argv) == 0
    [(app, settings)] = served
    assert app.handler is hello  # the native adapter around the handler named
    assert settings.idle_timeout == 9.0  # the option wins
    assert settings.header_timeout == 3.0  # the environment, where no option is given
    assert settings.bind == ["127.0.0.1:2", "[::1]:3"]  # repeated options replace it
    assert settings.body_timeout == 30.0  # the default


def test_serve_gives_a_folder_and_static_mounts_a_prefix(served, tmp_path):
    from treadle.apps.mounts import Mounts
    from treadle.apps.static.app import StaticFiles

    assert cli.main(["serve", str(tmp_path), "--upload"]) == 0
    assert cli.main(["run", "treadle.demo:hello", "--static", f"/assets={tmp_path}"]) == 0
    [(files, settings), (mounted, _)] = served
    assert isinstance(files, StaticFiles) and files.root == str(tmp_path.resolve())
    assert settings.upload is True
    assert isinstance(mounted, Mounts)


def test_main_reads_sys_argv(served, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["treadle", "run", "treadle.demo:hello", "--backlog", "5"])
    assert cli.main() == 0
    [(_, settings)] = served
    assert settings.backlog == 5


# ----------------------------------------------------------------------------- loading


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    """A directory on sys.path with a few application modules, imported fresh."""
    (tmp_path / "good_app.py").write_text(
        textwrap.dedent(
            """
            from treadle.apps import Response

            def handler(request):
                return Response(200, [], b"ok")

            class Holder:
                @staticmethod
                def nested(request):
                    return Response()

            NOT_CALLABLE = 42
            """
        )
    )
    (tmp_path / "broken_on_import.py").write_text("1 / 0\n")
    (tmp_path / "bad_syntax.py").write_text("def (:\n")
    (tmp_path / "imports_missing.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("good_app", "broken_on_import", "bad_syntax", "imports_missing"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def test_load_app_finds_plain_and_dotted_attributes(app_dir):
    import good_app

    assert cli.load_app("good_app:handler") is good_app.handler
    assert cli.load_app("good_app:Holder.nested") is good_app.Holder.nested


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("good_app", "expected MODULE:ATTR or MODULE:ATTR(), got 'good_app'"),
        ("good_app:()", "expected MODULE:ATTR"),
        ("good_app:", "expected MODULE:ATTR"),
        (":handler", "expected MODULE:ATTR"),
        ("no_such_module_xyz:app", "cannot import 'no_such_module_xyz': ModuleNotFoundError"),
        ("broken_on_import:app", "cannot import 'broken_on_import': ZeroDivisionError"),
        ("bad_syntax:app", "cannot import 'bad_syntax': SyntaxError"),
        ("imports_missing:app", "No module named 'no_such_dependency_xyz'"),
        ("good_app:missing", "module 'good_app' has no attribute 'missing'"),
        ("good_app:Holder.missing", "has no attribute 'Holder.missing'"),
        ("good_app:NOT_CALLABLE", "good_app:NOT_CALLABLE is not callable"),
    ],
)
def test_unloadable_application_is_one_line_and_status_2(capsys, served, app_dir, spec, expected):
    with pytest.raises(SettingError, match=None):
        cli.load_app(spec)
    line = _fails(capsys, ["run", spec])
    assert expected in line
    assert served == []


def test_load_app_puts_the_working_directory_on_the_path(tmp_path, monkeypatch):
    (tmp_path / "cwd_app.py").write_text("def app(request):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "cwd_app", raising=False)
    assert callable(cli.load_app("cwd_app:app"))
    assert str(tmp_path) in sys.path


# ------------------------------------------------------------------------------ serving


def test_address_in_use_is_one_line_and_status_1(capsys, monkeypatch):
    monkeypatch.setattr(cli.logging, "basicConfig", lambda **kwargs: None)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        line = _fails(capsys, ["run", "treadle.demo:hello", "--bind", f"127.0.0.1:{port}"], 1)
    assert line.startswith("treadle: error: cannot listen: ")
    assert "in use" in line.lower()


def test_unavailable_poller_is_one_line_and_status_2(capsys, monkeypatch):
    import treadle.server.server as server_module

    def unavailable(name: str):
        raise ValueError(f"poller {name!r} is not available on this platform; available: poll")

    monkeypatch.setattr(cli.logging, "basicConfig", lambda **kwargs: None)
    monkeypatch.setattr(server_module, "create_poller", unavailable)
    line = _fails(capsys, ["run", "treadle.demo:hello", "--poller", "epoll"])
    assert "poller 'epoll' is not available" in line


# ------------------------------------------------------------- WSGI and factories


def _wsgi(environ, start_response):
    return []


def _wsgi_defaults(environ, start_response=None):
    return []


def _native(request):
    return None


def _native_named(request, extra=None):
    return None


class _WSGIClass:
    """PEP 3333 allows a class: calling it makes the iterable."""

    def __init__(self, environ, start_response):
        self.items = []


class _CallableWSGI:
    def __call__(self, environ, start_response):
        return []


class _CallableNative:
    def __call__(self, request):
        return None

    def method(self, environ, start_response):
        return []


@pytest.mark.parametrize(
    ("app", "interface"),
    [
        (_wsgi, "wsgi"),
        (_wsgi_defaults, "wsgi"),
        (lambda environ, start_response: [], "wsgi"),
        (_WSGIClass, "wsgi"),
        (_CallableWSGI(), "wsgi"),
        (_CallableNative().method, "wsgi"),
        (_native, "native"),
        (_native_named, "native"),
        (_CallableNative(), "native"),
        (lambda req: None, "native"),
    ],
)
def test_auto_tells_wsgi_from_native_by_the_signature(app, interface):
    assert cli.detect_interface(app) == interface


def _star(*args, **kwargs):
    return None


def _three(a, b, c):
    return None


def _keyword_only(request, *, flag):
    return None


@pytest.mark.parametrize("app", [_star, _three, _keyword_only, lambda: None, print])
def test_auto_says_so_in_one_line_when_the_signature_does_not_tell(app):
    with pytest.raises(SettingError) as caught:
        cli.detect_interface(app, "m:app")
    message = str(caught.value)
    assert "\n" not in message
    assert "m:app" in message or "signature" in message
    assert message.endswith("give --interface wsgi or --interface native")


@pytest.fixture
def wsgi_dir(tmp_path, monkeypatch):
    """A folder (not on sys.path) with a WSGI module and factories."""
    (tmp_path / "wsgi_mod.py").write_text(
        textwrap.dedent(
            """
            def app(environ, start_response):
                start_response("200 OK", [])
                return [b"ok"]

            def make():
                return app

            def broken():
                raise ValueError("no config\\nsecond line")

            def not_an_app():
                return 42

            def lint(*args):
                return app(*args)
            """
        )
    )
    monkeypatch.delitem(sys.modules, "wsgi_mod", raising=False)
    monkeypatch.chdir(tmp_path.parent)  # the folder is found only through --chdir
    return tmp_path


def test_run_serves_a_wsgi_app_with_its_settings(served, wsgi_dir, monkeypatch):
    from treadle.apps.wsgi import WSGIApplication

    monkeypatch.delitem(sys.modules, "wsgi_mod", raising=False)
    argv = ["run", "wsgi_mod:make()", "--chdir", str(wsgi_dir), "--threads", "3"]
    argv += ["--root-path", "/app/", "--queue-size", "5", "--static", f"/s={wsgi_dir}"]
    assert cli.main(argv) == 0
    [(mounted, settings)] = served
    import wsgi_mod

    adapter = mounted._fallback
    assert isinstance(adapter, WSGIApplication)
    assert adapter.app is wsgi_mod.app
    assert adapter.threads == 3 and adapter.pool is not None
    assert (adapter.pool.threads, adapter.pool.queue_size) == (3, 5)
    assert settings.root_path == "/app"
    mounted.close()  # what Server.close does once its connections are closed
    assert adapter.pool.submit(lambda: None) is False
    assert sys.path[0] == str(wsgi_dir)


def test_explicit_interface_needs_no_signature(served, wsgi_dir, monkeypatch):
    from treadle.apps.native import NativeApplication
    from treadle.apps.wsgi import WSGIApplication

    monkeypatch.chdir(wsgi_dir)
    assert cli.main(["run", "wsgi_mod:lint", "--interface", "wsgi"]) == 0
    assert cli.main(["run", "wsgi_mod:app", "--interface", "native"]) == 0
    [(wsgi, _), (native, _)] = served
    assert isinstance(wsgi, WSGIApplication) and isinstance(native, NativeApplication)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("wsgi_mod:broken()", "wsgi_mod:broken() failed: ValueError: no config second line"),
        ("wsgi_mod:not_an_app()", "wsgi_mod:not_an_app() returned int, not an application"),
        ("wsgi_mod:lint", "give --interface wsgi or --interface native"),
    ],
)
def test_factories_and_undecidable_apps_fail_in_one_line(capsys, served, wsgi_dir, spec, expected):
    line = _fails(capsys, ["run", spec, "--chdir", str(wsgi_dir)])
    assert expected in line
    assert served == []


def test_chdir_to_a_missing_folder(capsys, served, tmp_path):
    line = _fails(capsys, ["run", "treadle.demo:hello", "--chdir", str(tmp_path / "nope")])
    assert "--chdir" in line and "No such file or directory" in line
