"""A small Flask application for the end-to-end WSGI tests (``tests.data.flask_app:app``).

Routing, JSON in and out, a form post, a file upload, a streamed response, a file download
with ``send_file`` (this very file, so the test can compare bytes), a session cookie, and
Flask's own 404 and 500 pages. ``create_app()`` is the same application from a factory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, jsonify, request, send_file, session, stream_with_context

#: raised by /boom; Flask logs it and answers its own 500 page
ERROR_MARKER = "deliberate failure in the Flask test app"

app = Flask(__name__)
app.secret_key = "treadle-tests-only"


@app.get("/")
def index() -> str:
    return "hello from flask"


@app.get("/items/<int:item_id>")
def item(item_id: int) -> Any:
    return jsonify(id=item_id, name=f"item {item_id}", query=request.args.get("q"))


@app.post("/json")
def echo_json() -> Any:
    document = request.get_json()
    return jsonify(received=document, kind=type(document).__name__), 201


@app.post("/form")
def form() -> Any:
    return jsonify(fields=request.form.to_dict(flat=False))


@app.post("/upload")
def upload() -> Any:
    stored = request.files["file"]
    data = stored.read()
    return jsonify(
        name=stored.filename,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        note=request.form.get("note"),
    )


@app.get("/stream")
def stream() -> Response:
    count = int(request.args.get("lines", "5"))

    def generate() -> Iterator[str]:
        for number in range(count):
            yield f"line {number} of {request.path}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/download")
def download() -> Response:
    return send_file(__file__, mimetype="text/x-python", as_attachment=True)


@app.get("/count")
def count() -> Any:
    session["visits"] = session.get("visits", 0) + 1
    return jsonify(visits=session["visits"])


@app.get("/boom")
def boom() -> str:
    raise RuntimeError(ERROR_MARKER)


def create_app() -> Flask:
    """The factory form: ``tests.data.flask_app:create_app()``."""
    return app
