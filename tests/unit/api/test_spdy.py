"""The SPDY/3.1 codec: golden bytes from real kubectls and for every frame, bounds, fuzzing.

The kubectl captures are the raw bytes each kubectl sent in one port-forward session (recorded
once by serving it a WebSocket and copying what it wrote): SYN_STREAM for the error stream and
its immediate FIN (kubectl writes nothing on it), SYN_STREAM for the data stream, "hello" and
the data stream's FIN. Their header blocks were compressed by Go's zlib with the SPDY/3
dictionary, and the two kubectls order the headers differently (Go's map order).
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinykube.api import spdy

KUBECTL_1_32 = bytes.fromhex(
    "800300010000003e0000000100000000000078f9e3c6a7c202253a48f95b044eea160616060c0c0c9c4590f8"
    "ca04a5634603704a2c294a4dcc851636aca9a0a800000000ffff0000000101000000800300010000001a0000"
    "0003000000000000826a469502954389848d04000000ffff000000030000000568656c6c6f00000003010000"
    "00")
KUBECTL_1_37 = bytes.fromhex(
    "800300010000003e0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb"
    "45e01c60616061c0c0c0c0590489c64c50f2663400000000ffff0000000101000000800300010000001800000"
    "003000000000000c2aa19540e2512d60b000000ffff000000030000000568656c6c6f0000000301000000")
SESSION = [
    spdy.SynStream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}),
    spdy.Data(1, b"", fin=True),
    spdy.SynStream(3, {"streamtype": "data", "port": "8080", "requestid": "0"}),
    spdy.Data(3, b"hello"),
    spdy.Data(3, b"", fin=True),
]


@pytest.mark.parametrize("capture", [KUBECTL_1_32, KUBECTL_1_37], ids=["kubectl-1.32", "pip"])
def test_a_kubectl_session_decodes(capture: bytes) -> None:
    assert spdy.Decoder().feed(capture) == SESSION


@pytest.mark.parametrize("capture", [KUBECTL_1_32, KUBECTL_1_37], ids=["kubectl-1.32", "pip"])
def test_a_kubectl_session_decodes_a_byte_at_a_time(capture: bytes) -> None:
    decoder = spdy.Decoder()
    assert [f for i in range(len(capture)) for f in decoder.feed(capture[i:i + 1])] == SESSION


def test_the_dictionary_is_spdy3s() -> None:
    """The bytes of moby/spdystream's spdy/dictionary.go (the SPDY/3 draft's dictionary)."""
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == \
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


# Each frame as a fresh encoder writes it; the header blocks are what kubectl accepted.
GOLDEN = [
    ("data", spdy.Data(3, b"hi"), "00000003" "00000002" "6869"),
    ("data-fin", spdy.Data(0x7FFFFFFF, b"", fin=True), "7fffffff" "01000000"),
    ("syn-reply", spdy.SynReply(1, {}),
     "80030002" "00000014" "00000001" "78f9e3c6a7c2" "02a6230600000000ffff"),
    ("syn-stream", spdy.SynStream(5, {"port": "80"}, priority=7, fin=True),
     "80030001" "01000023" "00000005" "00000000" "e000"
     "78f9e3c6a7c2" "02a6234648f95b044aab4c160600000000ffff"),
    ("rst-stream", spdy.RstStream(3, spdy.CANCEL), "80030003" "00000008" "00000003" "00000005"),
    ("settings", spdy.Settings(((1, 4, 100), (0, 7, 65536))),
     "80030004" "00000014" "00000002" "01000004" "00000064" "00000007" "00010000"),
    ("ping", spdy.Ping(7), "80030006" "00000004" "00000007"),
    ("goaway", spdy.GoAway(9, spdy.GOAWAY_PROTOCOL_ERROR),
     "80030007" "00000008" "00000009" "00000001"),
    ("window-update", spdy.WindowUpdate(3, 4096), "80030009" "00000008" "00000003" "00001000"),
]


@pytest.mark.parametrize(("frame", "golden"), [(f, g) for _, f, g in GOLDEN],
                         ids=[i for i, _, _ in GOLDEN])
def test_golden_bytes(frame: spdy.Frame, golden: str) -> None:
    encoded = spdy.Encoder().encode(frame)
    assert encoded.hex() == golden
    assert spdy.Decoder().feed(encoded) == [frame]


def test_header_blocks_share_one_context_per_direction() -> None:
    """The second block leans on the first: it is shorter, and only decodes in sequence."""
    encoder = spdy.Encoder()
    headers = {"streamtype": "data", "port": "8080", "requestid": "12"}
    first = encoder.encode(spdy.SynStream(1, headers))
    second = encoder.encode(spdy.SynStream(3, headers))
    assert len(second) < len(first)
    decoder = spdy.Decoder()
    assert decoder.feed(first + second) == [spdy.SynStream(1, headers),
                                            spdy.SynStream(3, headers)]
    with pytest.raises(spdy.SpdyError):
        spdy.Decoder().feed(second)


def _control(kind: int, body: bytes, *, version: int = 3, flags: int = 0) -> bytes:
    return struct.pack(">II", 0x80000000 | version << 16 | kind, flags << 24 | len(body)) + body


def _block(raw: bytes) -> bytes:
    compressor = zlib.compressobj(zdict=spdy.DICTIONARY)
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _pairs(*pairs: tuple[bytes, bytes], count: int | None = None) -> bytes:
    out = struct.pack(">I", len(pairs) if count is None else count)
    for name, value in pairs:
        out += struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value
    return out


BAD = [
    ("frame-too-long", struct.pack(">II", 1, spdy.MAX_LENGTH + 1), "exceeds the maximum"),
    ("version-2", _control(spdy.PING, b"\0\0\0\1", version=2), "unsupported SPDY version 2"),
    ("ping-length", _control(spdy.PING, b"\0\0\0\1\0"), "invalid length 5"),
    ("rst-length", _control(spdy.RST_STREAM, b"\0\0\0\1"), "invalid length 4"),
    ("goaway-length", _control(spdy.GOAWAY, b""), "invalid length 0"),
    ("window-length", _control(spdy.WINDOW_UPDATE, b"\0" * 12), "invalid length 12"),
    ("syn-stream-short", _control(spdy.SYN_STREAM, b"\0" * 9), "invalid length 9"),
    ("settings-count", _control(spdy.SETTINGS, b"\0\0\0\2" + b"\0" * 8), "2 entries"),
    ("stream-zero", _control(spdy.RST_STREAM, b"\0" * 4 + b"\0\0\0\1"), "stream id 0"),
    ("not-zlib", _control(spdy.SYN_REPLY, b"\0\0\0\1" + b"garbage"), "does not inflate"),
    ("inflates-too-far", _control(spdy.SYN_REPLY, b"\0\0\0\1" + _block(
        _pairs((b"a", b"x" * (spdy.MAX_HEADER_BLOCK + 1))))), "exceeds 65536 bytes"),
    ("upper-case-name", _control(spdy.SYN_REPLY, b"\0\0\0\1" + _block(
        _pairs((b"Port", b"1")))), "invalid header name"),
    ("duplicate-name", _control(spdy.SYN_REPLY, b"\0\0\0\1" + _block(
        _pairs((b"port", b"1"), (b"port", b"2")))), "duplicate header"),
    ("count-too-big", _control(spdy.SYN_REPLY, b"\0\0\0\1" + _block(
        _pairs(count=1 << 30))), "claims 1073741824 headers"),
    ("truncated-block", _control(spdy.SYN_REPLY, b"\0\0\0\1" + _block(
        _pairs((b"port", b"1"))[:-1])), "truncated header block"),
    ("trailing-bytes", _control(spdy.SYN_REPLY, b"\0\0\0\1" + _block(
        _pairs((b"port", b"1")) + b"\0")), "trailing bytes"),
]


@pytest.mark.parametrize(("data", "message"), [(d, m) for _, d, m in BAD],
                         ids=[i for i, _, _ in BAD])
def test_bad_input_is_a_spdy_error_and_ends_the_decoder(data: bytes, message: str) -> None:
    decoder = spdy.Decoder()
    with pytest.raises(spdy.SpdyError, match=message):
        decoder.feed(data)
    assert repr(decoder) == "spdy.Decoder(buffered=0)"
    with pytest.raises(spdy.SpdyError, match="already failed"):
        decoder.feed(spdy.Encoder().encode(spdy.Ping(1)))


def test_an_oversized_frame_fails_on_its_header_before_its_body_arrives() -> None:
    decoder = spdy.Decoder(max_length=1024)
    with pytest.raises(spdy.SpdyError, match="1025 bytes exceeds the maximum of 1024"):
        decoder.feed(struct.pack(">II", 1, 1025))


def test_a_partial_frame_waits_and_unknown_control_frames_are_skipped() -> None:
    decoder = spdy.Decoder()
    ping = spdy.Encoder().encode(spdy.Ping(3))
    assert decoder.feed(_control(0x7F, b"future") + ping[:5]) == []
    assert decoder.feed(ping[5:]) == [spdy.Ping(3)]


def test_nul_separated_values_pass_as_one_string() -> None:
    block = spdy.pack_headers({"Accept": "a\0b"})
    assert spdy.unpack_headers(block) == {"accept": "a\0b"}


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=8))
def test_fuzz_never_raises_anything_but_spdy_error(chunks: list[bytes]) -> None:
    decoder = spdy.Decoder(max_length=4096)
    for chunk in chunks:
        try:
            decoder.feed(chunk)
        except spdy.SpdyError:
            return


@settings(max_examples=200, deadline=None)
@given(prefix=st.integers(0, len(KUBECTL_1_32)), noise=st.binary(min_size=1, max_size=32))
def test_fuzz_a_real_session_cut_anywhere_then_noise(prefix: int, noise: bytes) -> None:
    """The frames a cut session completes come out in order; noise after is an error or waits."""
    decoder = spdy.Decoder()
    frames = decoder.feed(KUBECTL_1_32[:prefix])
    assert frames == SESSION[:len(frames)]
    with contextlib.suppress(spdy.SpdyError):
        decoder.feed(noise)


@settings(max_examples=500, deadline=None)
@given(kind=st.integers(0, 12), flags=st.integers(0, 255), head=st.binary(max_size=12),
       raw=st.binary(max_size=40), compress=st.booleans(), version=st.sampled_from([3, 3, 2]))
def test_fuzz_control_frames_with_compressed_blocks(kind: int, flags: int, head: bytes,
                                                    raw: bytes, compress: bool,
                                                    version: int) -> None:
    """Well-framed control frames of every type with random (possibly deflated) bodies, so
    that the header-block and fixed-field parsers see input, not just the frame header."""
    body = head + (_block(raw) if compress else raw)
    with contextlib.suppress(spdy.SpdyError):
        spdy.Decoder().feed(_control(kind, body, version=version, flags=flags))
