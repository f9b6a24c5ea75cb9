"""A connection's unsent output: bytes and file segments, and how they reach a transport.

Why one queue holds two kinds of item. A response body is either bytes made in Python
(a handler's answer, a chunk header, an iterable's piece) or a range of a file that the
kernel can copy to the socket itself (``sendfile``: no read into Python, no copy, no
memory held while a slow client takes its time). Keeping both in one ordered queue means
framing bytes, file ranges and the next pipelined response leave in the order they were
queued, and flow control has one number to look at: ``size`` counts every unsent byte,
of either kind, so the high and low water marks mean the same for a file as for bytes.

A ``FileSegment`` names a descriptor, an offset and a count. It does not own the
descriptor: whoever queued it is told through ``release`` once the segment is fully sent
or dropped (the connection closed first), exactly once, and may then close the file or
keep it cached. The offset moves as bytes go out, so a send cut short by EAGAIN resumes
where it stopped.

A transport that cannot ``sendfile`` (TLS, later) gets the same segment read in pieces
with ``os.pread`` and sent as bytes. A file that shrank while being sent (``sendfile``
or ``pread`` finds its end early) raises ``FileShrankError``: the response already
announced a length it cannot honour, so the only honest end is to close the connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .transport import Transport

# Read-and-send fallback: how much of a file one pread takes.
_READ_PIECE_BYTES = 256 * 1024


class FileShrankError(Exception):
    """A file segment's file ended before the segment did."""


class FileSegment:
    """``count`` bytes of the open file ``fd`` from ``offset``, to send without reading."""

    __slots__ = ("fd", "offset", "count", "release")

    def __init__(
        self,
        fd: int,
        offset: int,
        count: int,
        release: Callable[[], object] | None = None,
    ) -> None:
        if offset < 0 or count < 0:
            raise ValueError("a file segment's offset and count must not be negative")
        self.fd = fd
        self.offset = offset
        self.count = count
        #: called once when the segment is sent or dropped
        self.release = release

    def done(self) -> None:
        """Tell the owner the segment is finished with; later calls do nothing."""
        release, self.release = self.release, None
        if release is not None:
            release()

    def __repr__(self) -> str:
        return f"<FileSegment fd={self.fd} offset={self.offset} count={self.count}>"


class OutputQueue:
    """Unsent output in order; ``size`` counts unsent bytes of both kinds."""

    __slots__ = ("items", "size")

    def __init__(self) -> None:
        self.items: list[bytes | FileSegment] = []
        self.size = 0

    def __bool__(self) -> bool:
        return bool(self.items)

    def push(self, data: bytes) -> None:
        if data:
            self.items.append(data)
            self.size += len(data)

    def push_file(self, segment: FileSegment) -> None:
        if segment.count:
            self.items.append(segment)
            self.size += segment.count
        else:
            segment.done()

    def discard(self) -> None:
        """Drop everything unsent, releasing file segments."""
        items, self.items = self.items, []
        self.size = 0
        for item in items:
            if type(item) is FileSegment:
                item.done()

    def write_to(self, transport: Transport) -> tuple[int, bool]:
        """Send until the queue is empty or the transport would block.

        Returns ``(bytes sent, blocked)``. Raises the transport's OSError (the peer is
        gone) and FileShrankError; bytes sent before either are off the queue.
        """
        items = self.items
        sent_total = 0
        blocked = False
        while items:
            first = items[0]
            if type(first) is FileSegment:
                try:
                    sent = _send_segment(transport, first)
                except BlockingIOError:
                    blocked = True
                    break
                sent_total += sent
                self.size -= sent
                if first.count:
                    blocked = True  # a short sendfile: the socket buffer is full
                    break
                del items[0]
                first.done()
                continue
            # Every leading bytes item in one send: a pipelined burst costs one call.
            run = 1
            while run < len(items) and type(items[run]) is bytes:
                run += 1
            data: bytes = first if run == 1 else b"".join(items[:run])  # type: ignore[assignment,arg-type]
            size = len(data)
            sent = 0
            # Bytes right before a file segment (a response head): say that more follows,
            # so the head leaves in one segment with the file's first bytes instead of
            # a small packet of its own that the client must wake up for.
            send = transport.send_more if run < len(items) else transport.send
            try:
                sent = send(data)
                while sent < size:
                    sent += send(memoryview(data)[sent:])
            except BlockingIOError:
                blocked = True
            finally:
                # Whatever happened (EAGAIN, or the peer gone), what left is off the queue.
                sent_total += sent
                self.size -= sent
                if sent >= size:
                    del items[:run]
                else:
                    items[:run] = [data[sent:]]
            if blocked:
                break
        return sent_total, blocked


def _send_segment(transport: Transport, segment: FileSegment) -> int:
    """Send as much of ``segment`` as the transport takes now; move its offset on.

    Raises BlockingIOError only when nothing at all could be sent.
    """
    sent_total = 0
    sendfile = transport.sendfile if transport.can_sendfile else None
    while segment.count:
        try:
            if sendfile is not None:
                sent = sendfile(segment.fd, segment.offset, segment.count)
                if sent == 0:
                    raise FileShrankError(
                        f"file ended {segment.count} bytes before its announced length"
                    )
            else:
                piece = os.pread(segment.fd, min(segment.count, _READ_PIECE_BYTES), segment.offset)
                if not piece:
                    raise FileShrankError(
                        f"file ended {segment.count} bytes before its announced length"
                    )
                sent = transport.send(piece)
        except BlockingIOError:
            if sent_total:
                return sent_total
            raise
        except InterruptedError:
            continue
        segment.offset += sent
        segment.count -= sent
        sent_total += sent
    return sent_total
