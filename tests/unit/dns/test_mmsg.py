"""Batched UDP I/O (recvmmsg/sendmmsg) on real loopback sockets: replies reach their senders."""

from __future__ import annotations

import socket

import pytest

from tinykube.dns import mmsg

pytestmark = pytest.mark.skipif(not mmsg.available(), reason="recvmmsg/sendmmsg need Linux")


def bound(family: int, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return sock


def drain(sock: socket.socket) -> list[bytes]:
    sock.settimeout(1.0)
    got = []
    try:
        while True:
            got.append(sock.recv(4096))
            sock.settimeout(0.2)
    except TimeoutError:
        return got


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"),
                                               (socket.AF_INET6, "::1")])
def test_hits_answered_in_batches_misses_handed_over_with_the_sender(family: int,
                                                                     host: str) -> None:
    try:
        server = bound(family, host)
    except OSError:
        pytest.skip(f"{host} is not available here")
    server.setblocking(False)
    clients = [bound(family, host) for _ in range(3)]
    batch = mmsg.BatchSocket(server)
    fast = {b"hit": b"\x81\x83answer"}  # flags byte 2 carries rcode 3
    counts = [0] * 16
    missed: list[tuple[bytes, tuple[str, int]]] = []
    sent = 0
    for round_ in range(3):  # more than one batch, so name lengths must be reset between them
        for n in range(50):
            client = clients[n % 3]
            packet = bytes((round_, n)) + (b"hit" if n % 5 else b"miss")
            client.sendto(packet, server.getsockname())
            sent += 1
    read = 0
    while read < sent:
        got = batch.serve(fast, counts, lambda data, addr: missed.append((data, addr)))
        assert got, "datagrams were sent but none could be read"
        read += got
    assert counts[3] == 120 and sum(counts) == 120
    assert len(missed) == 30
    client_addresses = {c.getsockname()[:2] for c in clients}
    assert {addr[:2] for _, addr in missed} == client_addresses
    assert all(data.endswith(b"miss") for data, _ in missed)
    for index, client in enumerate(clients):
        replies = drain(client)
        expected = {bytes((round_, n)) + b"\x81\x83answer"
                    for round_ in range(3) for n in range(index, 50, 3) if n % 5}
        assert set(replies) == expected and len(replies) == len(expected)
    for sock in (server, *clients):
        sock.close()


def test_nothing_waiting_reads_nothing() -> None:
    server = bound(socket.AF_INET, "127.0.0.1")
    server.setblocking(False)
    assert mmsg.BatchSocket(server).serve({}, [0] * 16, lambda *_: None) == 0
    server.close()


def test_negative_answers_go_out_with_the_hits_around_the_misses() -> None:
    server = bound(socket.AF_INET, "127.0.0.1")
    server.setblocking(False)
    client = bound(socket.AF_INET, "127.0.0.1")
    batch = mmsg.BatchSocket(server)
    kinds = ["hit", "neg", "miss", "neg", "hit", "miss", "miss", "hit"] * 5  # runs split by misses
    for n, kind in enumerate(kinds):
        client.sendto(bytes((0, n)) + kind.encode(), server.getsockname())
    counts = [0] * 16
    missed: list[bytes] = []
    asked: list[bytes] = []

    def negative(key: bytes) -> bytes | None:
        asked.append(key)
        return b"\x81\x83nx" + key if key == b"neg" else None

    read = 0
    while read < len(kinds):
        got = batch.serve({b"hit": b"\x81\x80yes"}, counts, lambda data, _: missed.append(data),
                          negative)
        assert got
        read += got
    assert counts[0] == 15 and counts[3] == 10
    assert sorted(set(asked)) == [b"miss", b"neg"] and len(missed) == 15
    expected = {bytes((0, n)) + (b"\x81\x80yes" if kind == "hit" else b"\x81\x83nxneg")
                for n, kind in enumerate(kinds) if kind != "miss"}
    replies = drain(client)
    assert set(replies) == expected and len(replies) == 25
    server.close()
    client.close()
