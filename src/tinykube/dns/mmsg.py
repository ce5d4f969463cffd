"""Batched UDP I/O for the DNS hot path: recvmmsg(2) and sendmmsg(2) through ctypes (Linux).

With one `recvmsg` and one `sendmsg` per query, the event loop's per-datagram work (a callback,
an address tuple formatted with `inet_ntop`, a bytes object, parsing the tuple back for
`sendto`) is most of the user time of a cached answer. Here one readable event drains up to
`BATCH` datagrams with one `recvmmsg`, level-1 cache hits are answered in place, and all their
answers leave with one `sendmmsg`. The client's address never becomes a Python object on this
path: each answer is written over its query (after the ID they share) and the receive headers,
address and all, are what `sendmmsg` sends (`serve`); the query-log variant (`serve_logged`)
still copies its answers into send buffers.

The `struct mmsghdr` arrays live in ctypes buffers; the loop reads and writes their fields through
integer `memoryview`s over those buffers (a `memoryview` index costs far less than a ctypes field
access). Layout (x86-64 and aarch64, LP64): `struct msghdr` is 56 bytes (name pointer at 0,
name length at 8, iovec pointer at 16, iovec count at 24), `struct mmsghdr` adds the 4-byte
`msg_len` at 56 and pads to 64; `struct iovec` is 16 bytes (base at 0, length at 8).
`available()` checks the platform before any of this is used; elsewhere the server falls back
to the event loop's datagram transport.

Misses that `negative` answers (names that are surely NXDOMAIN, built from a template:
`wire.Responder.negative`) stay in the batch like hits. Other misses, forwarded queries and
anything else leave the batch: the caller's `slow(data,
address)` answers them with an ordinary `sendto`. A datagram longer than `SIZE` is cut (MSG_TRUNC)
and then fails to parse, so it gets FORMERR, as with a transport whose `max_size` is 4096.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import sys
from collections.abc import Callable
from time import perf_counter

BATCH = 64  # datagrams per system call
SIZE = 4096  # bytes per datagram buffer
NAME = 128  # bytes per address buffer (sockaddr_storage)
MMSGHDR = 64
IOVEC = 16
Slow = Callable[[bytes, tuple[str, int]], None]
Negative = Callable[[bytes], "bytes | None"]


def available() -> bool:
    """Whether batched I/O works here: Linux, LP64, and a libc with recvmmsg/sendmmsg."""
    if not sys.platform.startswith("linux") or struct.calcsize("P") != 8:
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    return hasattr(libc, "recvmmsg") and hasattr(libc, "sendmmsg")


def _address(family: int, raw: bytes) -> tuple[str, int]:
    """A sockaddr_in/sockaddr_in6 buffer -> the (host, port) tuple sockets use."""
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
    return socket.inet_ntop(socket.AF_INET, raw[4:8]), port


class BatchSocket:
    """A non-blocking UDP socket read and answered `BATCH` datagrams at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.family = sock.family
        self.fd = sock.fileno()
        libc = ctypes.CDLL(None, use_errno=True)
        self._recvmmsg = libc.recvmmsg
        self._recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                                   ctypes.c_void_p]
        self._sendmmsg = libc.sendmmsg
        self._sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
        self._recv_hdrs = ctypes.create_string_buffer(MMSGHDR * BATCH)
        self._send_hdrs = ctypes.create_string_buffer(MMSGHDR * BATCH)
        self._recv_iov = ctypes.create_string_buffer(IOVEC * BATCH)
        self._send_iov = ctypes.create_string_buffer(IOVEC * BATCH)
        self._recv_data = ctypes.create_string_buffer(SIZE * BATCH)
        self._send_data = ctypes.create_string_buffer(SIZE * BATCH)
        self._names = ctypes.create_string_buffer(NAME * BATCH)
        self.recv_base = ctypes.addressof(self._recv_data)
        self.send_base = ctypes.addressof(self._send_data)
        self.names_base = ctypes.addressof(self._names)
        self.recv_hdrs_base = ctypes.addressof(self._recv_hdrs)
        self.send_hdrs_base = ctypes.addressof(self._send_hdrs)
        # 4- and 8-byte views of the header arrays: msg_len is u32 index 14 + 16 i, the name
        # length u32 index 2 + 16 i, the name pointer u64 index 8 i; iov_len u64 index 1 + 2 j.
        self.recv_u32 = memoryview(self._recv_hdrs).cast("B").cast("I")
        self.send_u32 = memoryview(self._send_hdrs).cast("B").cast("I")
        self.send_u64 = memoryview(self._send_hdrs).cast("B").cast("Q")
        self.send_iov_u64 = memoryview(self._send_iov).cast("B").cast("Q")
        self.names_view = memoryview(self._names)
        self.recv_view = memoryview(self._recv_data).cast("B")
        self.send_view = memoryview(self._send_data).cast("B")
        self.recv_iov_u64 = memoryview(self._recv_iov).cast("B").cast("Q")
        self.recv_iov_base = ctypes.addressof(self._recv_iov)
        # The receive headers and iovecs as laid out, restored after each batch (`serve`).
        self._pristine_hdrs = ctypes.create_string_buffer(MMSGHDR * BATCH)
        self._pristine_iov = ctypes.create_string_buffer(IOVEC * BATCH)
        self.pristine_hdrs_base = ctypes.addressof(self._pristine_hdrs)
        self.pristine_iov_base = ctypes.addressof(self._pristine_iov)
        # Per receive slot: index, data offset, u32 index of msg_len, u64 index of iov_len.
        self._slots = [(i, i * SIZE, 16 * i + 14, 2 * i + 1) for i in range(BATCH)]
        self._layout()

    def _layout(self) -> None:
        recv_u64 = memoryview(self._recv_hdrs).cast("B").cast("Q")
        recv_iov_u64 = self.recv_iov_u64
        recv_iov_base = self.recv_iov_base
        send_iov_base = ctypes.addressof(self._send_iov)
        for i in range(BATCH):
            recv_iov_u64[2 * i] = self.recv_base + i * SIZE
            recv_iov_u64[2 * i + 1] = SIZE
            recv_u64[8 * i] = self.names_base + i * NAME
            self.recv_u32[16 * i + 2] = NAME
            recv_u64[8 * i + 2] = recv_iov_base + i * IOVEC
            recv_u64[8 * i + 3] = 1
            self.send_iov_u64[2 * i] = self.send_base + i * SIZE
            self.send_u64[8 * i + 2] = send_iov_base + i * IOVEC
            self.send_u64[8 * i + 3] = 1
        ctypes.memmove(self._pristine_hdrs, self._recv_hdrs, MMSGHDR * BATCH)
        ctypes.memmove(self._pristine_iov, self._recv_iov, IOVEC * BATCH)

    def receive(self) -> int:
        """Read up to BATCH waiting datagrams; how many (0 when none is waiting)."""
        count = self._recvmmsg(self.fd, self.recv_hdrs_base, BATCH, socket.MSG_DONTWAIT, None)
        if count < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return 0
            raise OSError(code, os.strerror(code))
        return int(count)

    def address(self, index: int) -> tuple[str, int]:
        """The sender of received datagram `index`, as a (host, port) tuple."""
        start = index * NAME
        return _address(self.family, bytes(self.names_view[start: start + 28]))

    def send(self, count: int) -> int:
        """Send the first `count` queued replies; how many the kernel took (the rest, if the
        socket buffer is full, are dropped as any UDP server drops them)."""
        sent = 0
        while sent < count:
            done = self._sendmmsg(self.fd, self.send_hdrs_base + sent * MMSGHDR, count - sent, 0)
            if done <= 0:
                break
            sent += done
        return sent

    def serve(self, fast: dict[bytes, bytes], counts: list[int], slow: Slow,
              negative: Negative | None = None) -> int:
        """Drain one batch: answer level-1 hits from `fast` (bumping `counts[rcode]`), and
        misses for which `negative(query[2:])` has an answer (`wire.Responder.negative`), in
        place; hand the rest to `slow`. Returns how many datagrams were read.

        Each answer overwrites its query after the ID (which it shares) and the receive
        headers, whose address fields the kernel just filled in, go back out with sendmmsg:
        a hit costs no copy of the ID or the address and no header writes but its length.
        A datagram handed to `slow` splits the batch into runs sent one by one. The headers
        and iovecs are then restored from a pristine copy in two memmoves."""
        count = self.receive()
        if not count:
            return 0
        recv_view, lengths, iov = self.recv_view, self.recv_u32, self.recv_iov_u64
        first = 0
        for i, start, at_length, at_iov in self._slots[:count]:
            key = recv_view[start + 2: start + lengths[at_length]].tobytes()
            cached = fast.get(key)
            if cached is None and negative is not None:
                cached = negative(key)
            if cached is None or len(cached) + 2 > SIZE:
                if i > first:
                    self.send_received(first, i)
                first = i + 1
                slow(recv_view[start: start + lengths[at_length]].tobytes(), self.address(i))
                continue
            size = len(cached)
            recv_view[start + 2: start + 2 + size] = cached
            iov[at_iov] = size + 2
            counts[cached[1] & 0x0F] += 1  # the rcode is in the low flags byte
        if count > first:
            self.send_received(first, count)
        ctypes.memmove(self.recv_hdrs_base, self.pristine_hdrs_base, count * MMSGHDR)
        ctypes.memmove(self.recv_iov_base, self.pristine_iov_base, count * IOVEC)
        return count

    def send_received(self, first: int, end: int) -> int:
        """Send receive slots first..end-1 back (answers written over their queries)."""
        sent = first
        while sent < end:
            done = self._sendmmsg(self.fd, self.recv_hdrs_base + sent * MMSGHDR, end - sent, 0)
            if done <= 0:
                break
            sent += done
        return sent - first

    def serve_logged(self, fast: dict[bytes, bytes], counts: list[int], slow: Slow,
                     log: Callable[[list[bytes], list[bytes], list[bytes], float], None]
                     ) -> int:
        """`serve` for a server with a query log (`dns.querylog`): the same, and the level-1
        hits of the batch go to `log(sockaddrs, keys, responses, seconds)` once the batch is
        sent (keys and responses without the ID, as the cache holds them). A copy of `serve`,
        so the log costs `serve` nothing."""
        started = perf_counter()
        count = self.receive()
        if not count:
            return 0
        recv_u32, send_u32, send_u64 = self.recv_u32, self.send_u32, self.send_u64
        send_iov, recv_view, send_view = self.send_iov_u64, self.recv_view, self.send_view
        names_base, names_view = self.names_base, self.names_view
        size = 8 if self.family == socket.AF_INET else 28  # of the sockaddr kept
        queued = 0
        names: list[bytes] = []
        keys: list[bytes] = []
        answers: list[bytes] = []
        for i in range(count):
            start = i * SIZE
            end = start + recv_u32[16 * i + 14]
            key = recv_view[start + 2: end].tobytes()
            cached = fast.get(key)
            if cached is None or len(cached) + 2 > SIZE:
                slow(recv_view[start:end].tobytes(), self.address(i))
            else:
                out = queued * SIZE
                send_view[out: out + 2] = recv_view[start: start + 2]  # the query's ID
                send_view[out + 2: out + 2 + len(cached)] = cached
                send_iov[2 * queued + 1] = len(cached) + 2
                send_u64[8 * queued] = names_base + i * NAME
                send_u32[16 * queued + 2] = recv_u32[16 * i + 2]
                counts[cached[1] & 0x0F] += 1
                queued += 1
                names.append(names_view[i * NAME: i * NAME + size].tobytes())
                keys.append(key)
                answers.append(cached)
            recv_u32[16 * i + 2] = NAME
        if queued:
            self.send(queued)
            log(names, keys, answers, perf_counter() - started)
        return count
