"""The WSGI applications of the ``wsgi`` scenario, one module for every server.

Each server (treadle, waitress, gunicorn, granian) imports its application from here by
``wsgi_apps:NAME``, so that all of them run exactly the same code and only the server
differs:

- ``hello``: 200, text/plain, ``Hello, world!`` with an explicit Content-Length (no side
  chunks); the status, header list and body are built once, so the application's own
  cost is a call and a return.
- ``flask_app`` (built on first use, so that importing this module for ``hello`` does not
  import Flask): ``/`` answers the same hello, ``/json`` a small JSON document through
  ``flask.jsonify``.
- ``busy``: ``/slow`` sleeps ``SLOW_S`` (a blocking call, as a database query would be)
  and ``/`` answers hello at once: what the loop's latency is measured with while every
  worker thread sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

BODY = b"Hello, world!"
STATUS = "200 OK"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
#: the document of Flask's ``/json`` route
DOCUMENT = {"message": "Hello, world!", "server": "wsgi", "items": [1, 2, 3], "ok": True}
#: how long ``busy``'s ``/slow`` blocks, in seconds
SLOW_S = 0.2

StartResponse = Callable[..., Any]


def hello(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response(STATUS, HEADERS)
    return [BODY]


def busy(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(SLOW_S)
    start_response(STATUS, HEADERS)
    return [BODY]


def make_flask_app() -> Any:
    """The Flask application: ``/`` hello (text/plain), ``/json`` ``DOCUMENT``."""
    from flask import Flask, Response, jsonify

    app = Flask("wsgi_apps")

    @app.get("/")
    def index() -> Response:
        return Response(BODY, mimetype="text/plain")

    @app.get("/json")
    def document() -> Response:
        return jsonify(DOCUMENT)

    return app


def __getattr__(name: str) -> Any:
    # ``wsgi_apps:flask_app`` builds the Flask application once, on first import of it
    if name == "flask_app":
        app = make_flask_app()
        globals()["flask_app"] = app
        return app
    raise AttributeError(name)
