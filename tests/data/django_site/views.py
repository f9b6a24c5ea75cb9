"""Views of the test project: a page, a CSRF-protected form, an upload, a stream, a file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from html import escape

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        f"hello from django at {request.path}", content_type="text/plain; charset=utf-8"
    )


def form(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        name = request.POST.get("name", "")
        return HttpResponse(f"<p>hello {escape(name)}</p>")
    token = get_token(request)
    return HttpResponse(
        '<form method="post" action="/form/">'
        f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
        '<input name="name"><button>send</button></form>'
    )


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    stored = request.FILES["file"]
    data = stored.read()
    return JsonResponse(
        {
            "name": stored.name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "note": request.POST.get("note"),
        }
    )


def stream(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("chunks", "5"))

    def chunks() -> Iterator[bytes]:
        for number in range(count):
            yield f"chunk {number}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def download(request: HttpRequest) -> FileResponse:
    return FileResponse(open(__file__, "rb"), content_type="text/x-python")  # noqa: SIM115
