"""The etcd peer relays: a cut member's connections, from it and to it, end; others go on.

Three echo servers on loopback stand for the members' peer ports; a client speaking for
member S opens a connection to member R's relay with S's relay URL in `X-PeerURLs`, as etcd's
peer requests carry it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tinykube.testing_peer_relay import PeerRelays


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def relays() -> Iterator[PeerRelays]:
    servers = [socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) for _ in range(3)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    relays = PeerRelays(3)
    relays.targets = [s.server_address[1] for s in servers]
    yield relays
    while OPENED:
        OPENED.pop().close()
    relays.close()
    for server in servers:
        server.shutdown()
        server.server_close()


OPENED: list[socket.socket] = []


def dial(relays: PeerRelays, sender: int | None, receiver: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", relays.ports[receiver]), timeout=5)
    OPENED.append(conn)
    peer = f"X-PeerURLs: {relays.urls[sender]}\r\n" if sender is not None else ""
    conn.sendall(f"GET /raft/stream/message/x HTTP/1.1\r\nHost: m\r\n{peer}\r\n".encode())
    return conn


def echoes(conn: socket.socket) -> bool:
    """Whether the far end still answers (the relay first replays the request's head)."""
    try:
        conn.sendall(b"ping")
        got = b""
        while not got.endswith(b"ping"):
            chunk = conn.recv(65536)
            if not chunk:
                return False
            got += chunk
        return True
    except OSError:
        return False


def test_a_cut_ends_the_member_s_links_both_ways_until_restored(relays: PeerRelays) -> None:
    links = {(s, r): dial(relays, s, r) for s in range(3) for r in range(3) if s != r}
    assert all(echoes(c) for c in links.values())
    relays.cut(1)
    alive = {pair for pair, conn in links.items() if echoes(conn)}
    assert alive == {(0, 2), (2, 0)}
    assert not echoes(dial(relays, 0, 1)) and not echoes(dial(relays, 1, 2))
    assert echoes(dial(relays, 2, 0))
    relays.restore(1)
    assert echoes(dial(relays, 0, 1)) and echoes(dial(relays, 1, 2))
    assert relays.refused >= 4 + 2


def test_a_connection_naming_no_sender_is_cut_only_with_its_receiver(
        relays: PeerRelays) -> None:
    relays.cut(2)
    assert echoes(dial(relays, None, 0))
    assert not echoes(dial(relays, None, 2))
