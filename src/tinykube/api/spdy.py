"""SPDY/3.1 frames and header blocks, as `kubectl port-forward` speaks them (moby/spdystream).

A pure codec: bytes in, frames out (`Decoder.feed`), frames in, bytes out (`Encoder.encode`),
no I/O. Every frame starts with 8 bytes: a control frame has the high bit set, the version (3)
and its type, then 8 bits of flags and a 24-bit length; a data frame has a 31-bit stream id,
then the flags (FIN = 1) and the length. Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are a
32-bit count of (32-bit length, name, 32-bit length, value) pairs, names lower case, several
values of one name joined by NUL, zlib-compressed with the SPDY/3 dictionary in one context
per direction for the whole session: each block is flushed with Z_SYNC_FLUSH so it ends on a
byte boundary, and the receiver inflates the blocks in order with one decompressor.

Bounds, since the peer may be hostile: a frame longer than `max_length` (any type), a header
block that inflates to more than `max_header_block` bytes, a malformed fixed-size frame, an
upper-case or repeated header name, and a version other than 3 are each a `SpdyError`; the
decoder then holds nothing, and the session is to be ended with GOAWAY. The decoder never buffers
more than one partial frame (at most `max_length` + 8 bytes). Unknown control frame types are
skipped, as SPDY/3 asks. Flow control (WINDOW_UPDATE, the initial window in SETTINGS) is decoded
for the session to ignore: spdystream, on both ends of every kubectl connection, neither sends
WINDOW_UPDATE nor waits for one.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Mapping

VERSION = 3

# control frame types
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9
# flags
FLAG_FIN, FLAG_UNIDIRECTIONAL = 0x01, 0x02
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL = 1, 2, 3, 4, 5
INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED = 6, 7, 8, 9
FRAME_TOO_LARGE = 11
# GOAWAY status codes
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2

MAX_LENGTH = 1 << 20          # the longest frame accepted (spdystream writes <= 32 KiB)
MAX_HEADER_BLOCK = 64 << 10   # the most a header block may inflate to
_HEAD = struct.Struct(">II")

# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1):
# length-prefixed words, then a run of common values.
_NAMES = """
    options head post put delete trace accept accept-charset accept-encoding accept-language
    accept-ranges age allow authorization cache-control connection content-base
    content-encoding content-language content-length content-location content-md5
    content-range content-type date etag expect expires from host if-match if-modified-since
    if-none-match if-range if-unmodified-since last-modified location max-forwards pragma
    proxy-authenticate proxy-authorization range referer retry-after server te trailer
    transfer-encoding upgrade user-agent vary via warning www-authenticate method get status
    """
_WORDS = (*_NAMES.split(), "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
          "keep-alive", "origin")
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")


def _dictionary() -> bytes:
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


DICTIONARY = _dictionary()


class SpdyError(Exception):
    """The peer broke the protocol; `status` is the GOAWAY status to end the session with."""

    def __init__(self, message: str, status: int = GOAWAY_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.status = status


Headers = Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclasses.dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    associated_to: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclasses.dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclasses.dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclasses.dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...]  # (flags, id, value)


@dataclasses.dataclass(frozen=True)
class Ping:
    id: int


@dataclasses.dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclasses.dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclasses.dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = (Data | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame
         | WindowUpdate)


# --- header blocks --------------------------------------------------------------------------

def pack_headers(headers: Headers) -> bytes:
    """The uncompressed header block (names lower-cased, as spdystream writes them)."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name, raw_value = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(raw_name)), raw_name, struct.pack(">I", len(raw_value)),
                raw_value]
    return b"".join(out)


def unpack_headers(block: bytes) -> dict[str, str]:
    """Parse an uncompressed header block; every byte must belong to it."""
    view = memoryview(block)
    count, pos = _u32(view, 0), 4
    if count > (len(view) - 4) // 8:
        raise SpdyError(f"header block claims {count} headers in {len(view)} bytes")
    headers: dict[str, str] = {}
    for _ in range(count):
        name, pos = _string(view, pos)
        value, pos = _string(view, pos)
        if not name or name != name.lower():
            raise SpdyError(f"invalid header name {name!r}")
        if name in headers:
            raise SpdyError(f"duplicate header {name!r}")
        headers[name] = value
    if pos != len(view):
        raise SpdyError("trailing bytes after the header block")
    return headers


def _u32(view: memoryview, pos: int) -> int:
    if pos + 4 > len(view):
        raise SpdyError("truncated header block")
    return int.from_bytes(view[pos:pos + 4], "big")


def _string(view: memoryview, pos: int) -> tuple[str, int]:
    length = _u32(view, pos)
    end = pos + 4 + length
    if end > len(view):
        raise SpdyError("truncated header block")
    try:
        return bytes(view[pos + 4:end]).decode(), end
    except UnicodeDecodeError as exc:
        raise SpdyError("header block is not UTF-8") from exc


# --- encoding -------------------------------------------------------------------------------

class Encoder:
    """Frames to bytes; one compression context for every header block this side sends."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                      zdict=DICTIONARY)

    def __repr__(self) -> str:
        return "spdy.Encoder()"

    def headers(self, headers: Headers) -> bytes:
        block = pack_headers(headers)
        return self._zlib.compress(block) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, Data):
            return _data(frame.stream_id, frame.data, FLAG_FIN if frame.fin else 0)
        kind, flags, body = self._control(frame)
        return _control(kind, flags, body)

    def _control(self, frame: Frame) -> tuple[int, int, bytes]:
        match frame:
            case SynStream():
                flags = (FLAG_FIN if frame.fin else 0) | \
                    (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
                return SYN_STREAM, flags, struct.pack(
                    ">IIBB", frame.stream_id, frame.associated_to, frame.priority << 5, 0,
                ) + self.headers(frame.headers)
            case SynReply():
                return SYN_REPLY, FLAG_FIN if frame.fin else 0, \
                    struct.pack(">I", frame.stream_id) + self.headers(frame.headers)
            case HeadersFrame():
                return HEADERS, FLAG_FIN if frame.fin else 0, \
                    struct.pack(">I", frame.stream_id) + self.headers(frame.headers)
            case RstStream():
                return RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status)
            case Settings():
                return SETTINGS, 0, struct.pack(">I", len(frame.entries)) + b"".join(
                    struct.pack(">II", flags << 24 | ident, value)
                    for flags, ident, value in frame.entries)
            case Ping():
                return PING, 0, struct.pack(">I", frame.id)
            case GoAway():
                return GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id, frame.status)
            case WindowUpdate():
                return WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta)
        raise TypeError(f"not a SPDY frame: {frame!r}")


def _data(stream_id: int, data: bytes, flags: int) -> bytes:
    return _HEAD.pack(stream_id & 0x7FFFFFFF, flags << 24 | len(data)) + data


def _control(kind: int, flags: int, body: bytes) -> bytes:
    return _HEAD.pack(0x80000000 | VERSION << 16 | kind, flags << 24 | len(body)) + body


# --- decoding -------------------------------------------------------------------------------

_FIXED_LENGTH = {RST_STREAM: 8, PING: 4, GOAWAY: 8, WINDOW_UPDATE: 8}
_MIN_LENGTH = {SYN_STREAM: 10, SYN_REPLY: 4, HEADERS: 4, SETTINGS: 4}


class Decoder:
    """Bytes to frames; one decompression context for every header block the peer sends."""

    def __init__(self, *, max_length: int = MAX_LENGTH,
                 max_header_block: int = MAX_HEADER_BLOCK) -> None:
        self.max_length = max_length
        self.max_header_block = max_header_block
        self._buffer = bytearray()
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)
        self._failed = False

    def __repr__(self) -> str:
        return f"spdy.Decoder(buffered={len(self._buffer)})"

    def feed(self, data: bytes) -> list[Frame]:
        """The frames `data` completes, in order; raises SpdyError (and then always)."""
        if self._failed:
            raise SpdyError("the session already failed")
        self._buffer += data
        frames: list[Frame] = []
        try:
            while len(self._buffer) >= 8:
                first, second = _HEAD.unpack_from(self._buffer)
                length = second & 0xFFFFFF
                if length > self.max_length:
                    raise SpdyError(f"frame of {length} bytes exceeds the maximum of "
                                    f"{self.max_length}")
                if len(self._buffer) < 8 + length:
                    break
                body = bytes(self._buffer[8:8 + length])
                del self._buffer[:8 + length]
                frame = self._frame(first, second >> 24, body)
                if frame is not None:
                    frames.append(frame)
        except SpdyError:
            self._failed = True
            self._buffer.clear()
            raise
        return frames

    def _frame(self, first: int, flags: int, body: bytes) -> Frame | None:
        if not first & 0x80000000:
            return Data(first & 0x7FFFFFFF, body, bool(flags & FLAG_FIN))
        version, kind = first >> 16 & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"unsupported SPDY version {version}")
        if (kind in _FIXED_LENGTH and len(body) != _FIXED_LENGTH[kind]) or \
                len(body) < _MIN_LENGTH.get(kind, 0):
            raise SpdyError(f"control frame {kind} of invalid length {len(body)}")
        fin = bool(flags & FLAG_FIN)
        match kind:
            case 1:  # SYN_STREAM
                stream, associated, priority = struct.unpack_from(">IIB", body)
                return SynStream(_stream_id(stream), self._inflate(body[10:]),
                                 associated & 0x7FFFFFFF, priority >> 5, fin,
                                 bool(flags & FLAG_UNIDIRECTIONAL))
            case 2:  # SYN_REPLY
                return SynReply(_stream_id(_first(body)), self._inflate(body[4:]), fin)
            case 8:  # HEADERS
                return HeadersFrame(_stream_id(_first(body)), self._inflate(body[4:]), fin)
            case 3:  # RST_STREAM
                stream, status = struct.unpack(">II", body)
                return RstStream(_stream_id(stream), status)
            case 4:  # SETTINGS
                return Settings(_settings(body))
            case 6:  # PING
                return Ping(_first(body))
            case 7:  # GOAWAY
                last, status = struct.unpack(">II", body)
                return GoAway(last & 0x7FFFFFFF, status)
            case 9:  # WINDOW_UPDATE
                stream, delta = struct.unpack(">II", body)
                return WindowUpdate(stream & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        return None  # an unknown control frame: skipped

    def _inflate(self, compressed: bytes) -> dict[str, str]:
        try:
            block = self._zlib.decompress(compressed, self.max_header_block + 1)
        except zlib.error as exc:
            raise SpdyError(f"header block does not inflate: {exc}") from exc
        if len(block) > self.max_header_block or self._zlib.unconsumed_tail:
            raise SpdyError(f"header block exceeds {self.max_header_block} bytes")
        if self._zlib.eof:
            raise SpdyError("header compression stream ended")
        return unpack_headers(block)


def _first(body: bytes) -> int:
    return int.from_bytes(body[:4], "big")


def _stream_id(word: int) -> int:
    stream = word & 0x7FFFFFFF
    if stream == 0:
        raise SpdyError("stream id 0")
    return stream


def _settings(body: bytes) -> tuple[tuple[int, int, int], ...]:
    count = _first(body)
    if len(body) != 4 + 8 * count:
        raise SpdyError(f"SETTINGS of {count} entries in {len(body)} bytes")
    words = struct.unpack_from(f">{2 * count}I", body, 4)
    return tuple((words[i] >> 24, words[i] & 0xFFFFFF, words[i + 1])
                 for i in range(0, len(words), 2))
