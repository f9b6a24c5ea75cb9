"""The waker: how another thread, or a signal handler, interrupts the loop's wait.

A non-blocking socket pair. The loop watches the reading end like any descriptor; a
``wake()`` writes one byte to the other end, so the loop's ``poll`` returns, and the
loop then ``drain()``s whatever piled up. Many wakes before one drain cost nothing more
than bytes in a buffer, and when that buffer is full a wake is already pending, so
``BlockingIOError`` is ignored.

Why sockets rather than a pipe or raw descriptors: ``wake()`` goes through the socket
*object*, which forgets its number when closed. A late ``wake()`` from a worker thread
after ``close()`` then fails harmlessly instead of writing a byte into whatever
connection was given the recycled descriptor number. Sockets also work with
``signal.set_wakeup_fd`` everywhere.

``wake()`` is safe from any thread and from a Python signal handler: it takes no lock
and only calls ``send`` (the GIL makes the socket object's use atomic enough here).
"""

from __future__ import annotations

import socket


class Waker:
    """A self-pipe made of a socket pair: ``wake()`` anywhere, ``drain()`` on the loop."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._closed = False

    def fileno(self) -> int:
        """Return the descriptor the loop watches for reading."""
        return self._reader.fileno()

    def write_fileno(self) -> int:
        """Return the descriptor ``wake()`` writes to (for ``signal.set_wakeup_fd``)."""
        return self._writer.fileno()

    def wake(self) -> None:
        """Make the loop's current or next wait return at once.

        Does nothing when a wake is already pending with the buffer full, or after
        ``close()``.
        """
        try:
            self._writer.send(b"\0")
        except BlockingIOError:
            pass  # the buffer is full, so the loop has a wake-up waiting already
        except OSError:
            if not self._closed:
                raise

    def drain(self) -> None:
        """Read and discard every pending wake-up byte, until EAGAIN."""
        recv = self._reader.recv
        try:
            while recv(4096):
                pass
        except BlockingIOError:
            pass  # empty: EINTR never gets here, Python retries it (PEP 475)

    def close(self) -> None:
        """Close both ends; later wakes are ignored. Safe to call twice."""
        self._closed = True
        self._reader.close()
        self._writer.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self.fileno()}"
        return f"<Waker {state}>"
