"""The ``treadle`` command.

    treadle serve [DIR] [--upload] [--bind HOST:PORT] [options]
    treadle run MODULE:ATTR[()] [--interface auto|wsgi|native] [--threads N]
                [--root-path /PREFIX] [--chdir DIR] [--static PREFIX=DIR] [options]

``MODULE:ATTR()`` calls a factory and serves what it returns. ``--interface auto`` (the
default) tells a WSGI application from a native handler by its signature:
``(environ, start_response)`` is WSGI, ``(request)`` is native; when the signature does
not say (``*args``), the command asks for ``--interface`` in one line.

Options come from the settings table in ``config.py``; each can also be given as a
``TREADLE_*`` environment variable. A bad option, a bad environment value or an
application that cannot be imported is one line on stderr and exit status 2; an address
that cannot be bound is one line and exit status 1. No traceback either way.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__
from .config import SETTINGS, Setting, SettingError, Settings

if TYPE_CHECKING:
    from .server.exchange import Application


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        _fail(message, 2)


def _fail(message: str, status: int) -> NoReturn:
    sys.stderr.write(f"treadle: error: {message}\n")
    raise SystemExit(status)


def _typed(setting: Setting) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return setting.convert(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None

    convert.__name__ = setting.name  # argparse names the type in its messages
    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="treadle",
        description="An HTTP/1.1 server built on a hand-made event loop.",
    )
    parser.add_argument("--version", action="version", version=f"treadle {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = commands.add_parser(
        "run",
        help="serve an application",
        description="Serve the application MODULE:ATTR: a WSGI application "
        "(environ, start_response) or a native handler (request), told apart by its "
        "signature unless --interface says; MODULE:ATTR() calls a factory. Every option "
        "can also be set as TREADLE_<NAME>.",
    )
    run.add_argument(
        "app", metavar="MODULE:ATTR", help="where the application lives (ATTR() for a factory)"
    )
    serve = commands.add_parser(
        "serve",
        help="serve the files of a folder",
        description="Serve the files of DIR (default: the current folder): downloads with "
        "ranges and conditional requests, folder listings, uploads with --upload. Every "
        "option can also be set as TREADLE_<NAME>.",
    )
    serve.add_argument("dir", metavar="DIR", nargs="?", default=".", help="the folder to serve")
    for setting in SETTINGS:
        kwargs: dict[str, Any] = {
            "dest": setting.name,
            "type": _typed(setting),
            "help": f"{setting.help} (default: {_show_default(setting.default)}; "
            f"env {setting.env})",
            "default": None,
        }
        if setting.choices:
            kwargs["metavar"] = "{" + ",".join(setting.choices) + "}"
        elif setting.metavar:
            kwargs["metavar"] = setting.metavar
        if setting.multiple:
            kwargs["action"] = "append"
        if setting.boolean:
            kwargs.pop("type")
            kwargs["action"] = argparse.BooleanOptionalAction
        for command in (run, serve):
            command.add_argument(setting.flag, **kwargs)
    return parser


def _show_default(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)


def load_app(spec: str) -> object:
    """Import ``MODULE:ATTR`` (dots allowed in ATTR); ``MODULE:ATTR()`` calls ATTR with no
    arguments and returns what it made. Raises SettingError with one line."""
    module_name, sep, attr = spec.partition(":")
    factory = attr.endswith("()")
    if factory:
        attr = attr[:-2]
    if not sep or not module_name or not attr:
        raise SettingError(f"expected MODULE:ATTR or MODULE:ATTR(), got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise SettingError(
            f"cannot import {module_name!r}: {type(error).__name__}: {_one_line(error)}"
        ) from None
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SettingError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise SettingError(f"{spec} is not callable")
    if factory:
        try:
            target = target()
        except Exception as error:
            raise SettingError(
                f"{spec} failed: {type(error).__name__}: {_one_line(error)}"
            ) from None
        if not callable(target):
            raise SettingError(f"{spec} returned {type(target).__name__}, not an application")
    return target


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def detect_interface(app: object, spec: str = "the application") -> str:
    """``"wsgi"`` for a callable taking ``(environ, start_response)``, ``"native"`` for
    one taking ``(request)``. Raises SettingError (one line) when the signature does not
    tell, or cannot be read."""
    hint = "; give --interface wsgi or --interface native"
    try:
        signature = inspect.signature(app)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SettingError(f"cannot read the signature of {spec}{hint}") from None
    kinds = inspect.Parameter
    params = list(signature.parameters.values())
    positional = [
        p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
    ]
    required = sum(1 for p in positional if p.default is p.empty)
    most = float("inf") if any(p.kind is kinds.VAR_POSITIONAL for p in params) else len(positional)
    names = [p.name for p in positional[:2]]
    keyword_only_required = any(
        p.kind is kinds.KEYWORD_ONLY and p.default is p.empty for p in params
    )
    if not keyword_only_required:
        if required == 2 or (required <= 2 <= most and "start_response" in names):
            return "wsgi"
        if (required == 1 and most == 1) or (
            required <= 1 <= most and names[:1] == ["request"] and "start_response" not in names
        ):
            return "native"
    raise SettingError(
        f"cannot tell from its signature {signature} whether {spec} is a WSGI application "
        f"(environ, start_response) or a native handler (request){hint}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = Settings.resolve(vars(args))
        if args.command == "serve":
            app = _static(args.dir, settings)
            shown = args.dir
        else:
            _chdir(settings.chdir)
            app = _adapt(load_app(args.app), settings, args.app)
            shown = ""
        app = _mount(app, settings)
    except SettingError as error:
        _fail(str(error), 2)
    return _serve(app, settings, shown)


def _chdir(folder: str) -> None:
    """``--chdir DIR``: work in DIR and import from it first."""
    if not folder:
        return
    try:
        os.chdir(folder)
    except OSError as error:
        raise SettingError(f"--chdir {folder!r}: {error.strerror or error}") from None
    here = os.getcwd()
    if here in sys.path:
        sys.path.remove(here)
    sys.path.insert(0, here)


def _static(folder: str, settings: Settings) -> Application:
    from .apps.static.app import StaticFiles

    try:
        return StaticFiles(folder, settings)
    except ValueError:
        raise SettingError(f"{folder!r} is not a folder") from None


def _mount(app: Application, settings: Settings) -> Application:
    """``--static PREFIX=DIR`` folders in front of ``app``."""
    if not settings.static:
        return app
    from .apps.mounts import Mounts
    from .apps.static.app import StaticFiles
    from .config import parse_mount

    mounts: list[tuple[str, Application]] = []
    for text in settings.static:
        prefix, folder = parse_mount(text)
        try:
            mounts.append((prefix, StaticFiles(folder, settings, prefix)))
        except ValueError:
            raise SettingError(f"--static {text}: {folder!r} is not a folder") from None
    return Mounts(mounts, app)


def _serve(app: Application, settings: Settings, folder: str = "") -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level.upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    from .server import Server

    server = Server(app, settings)
    try:
        server.start()
    except ValueError as error:  # an unavailable poller
        server.close()
        _fail(str(error), 2)
    except OSError as error:
        server.close()
        _fail(f"cannot listen: {error.strerror or error}", 1)
    if folder:
        for host, port in server.addresses:
            shown = f"[{host}]" if ":" in host else host
            print(f"treadle: serving {folder} at http://{shown}:{port}/", flush=True)
    server.install_signal_handlers()
    server.run()
    return 0


def _adapt(handler: object, settings: Settings, spec: str = "the application") -> Application:
    """The application adapter that ``--interface`` names (or the signature tells, for
    ``auto``) around ``handler``."""
    interface = settings.interface
    if interface == "auto":
        interface = detect_interface(handler, spec)
    if interface == "native":
        from .apps.native import NativeApplication

        return NativeApplication(handler)  # type: ignore[arg-type]
    if interface == "wsgi":
        from .apps.wsgi import WSGIApplication

        return WSGIApplication.from_settings(handler, settings)  # type: ignore[arg-type]
    raise SettingError(f"unknown interface {interface!r}")  # the settings table prevents it


if __name__ == "__main__":
    raise SystemExit(main())
