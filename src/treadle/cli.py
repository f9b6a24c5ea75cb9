"""The ``treadle`` command.

    treadle serve [DIR] [--upload] [--bind HOST:PORT] [options]
    treadle run MODULE:ATTR [--interface native] [--static PREFIX=DIR] [options]

Options come from the settings table in ``config.py``; each can also be given as a
``TREADLE_*`` environment variable. A bad option, a bad environment value or an
application that cannot be imported is one line on stderr and exit status 2; an address
that cannot be bound is one line and exit status 1. No traceback either way.
"""

from __future__ import annotations

import argparse
import importlib
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
        description="Serve the application MODULE:ATTR (a native handler with "
        "--interface native). Every option can also be set as TREADLE_<NAME>.",
    )
    run.add_argument("app", metavar="MODULE:ATTR", help="where the application lives")
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
    """Import ``MODULE:ATTR`` (dots allowed in ATTR); raise SettingError with one line."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SettingError(f"expected MODULE:ATTR, got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise SettingError(
            f"cannot import {module_name!r}: {type(error).__name__}: {error}"
        ) from None
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SettingError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise SettingError(f"{spec} is not callable")
    return target


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
            app = _adapt(load_app(args.app), settings.interface)
            shown = ""
        app = _mount(app, settings)
    except SettingError as error:
        _fail(str(error), 2)
    return _serve(app, settings, shown)


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


def _adapt(handler: object, interface: str) -> Application:
    """The application adapter that ``--interface`` names, around ``handler``."""
    if interface == "native":
        from .apps.native import NativeApplication

        return NativeApplication(handler)  # type: ignore[arg-type]
    raise SettingError(f"unknown interface {interface!r}")  # the settings table prevents it


if __name__ == "__main__":
    raise SystemExit(main())
