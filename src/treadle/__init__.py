"""treadle: an HTTP/1.1 server built on a hand-made event loop over select, poll and epoll."""

__version__ = "0.1.0"
