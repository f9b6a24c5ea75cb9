"""Serving a folder over HTTP: ``treadle serve DIR`` and ``--static PREFIX=DIR``.

The pure parts (URL to path, preconditions, ranges, content coding, listings, the
multipart parser) are sans-IO modules of their own, tested like the HTTP core; the
application that ties them to the server's exchange lives in ``app.py``.
"""
