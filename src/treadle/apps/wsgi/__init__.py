"""WSGI (PEP 3333) hosting: ``treadle run module:app`` for Flask, Django and the rest.

``adapter.py`` ties a WSGI callable to the server's exchange and its worker threads;
the parts it is made of each have one job: ``environ.py`` (the environ and
``wsgi.errors``), ``validation.py`` (what ``start_response`` accepts), ``body.py``
(``wsgi.input`` for streamed bodies), ``output.py`` (a streamed response, with
backpressure), ``files.py`` (``wsgi.file_wrapper``) and ``pool.py`` (the threads).
"""

from .adapter import WSGIApplication
from .body import ClientDisconnected
from .files import FileWrapper

__all__ = ["ClientDisconnected", "FileWrapper", "WSGIApplication"]
