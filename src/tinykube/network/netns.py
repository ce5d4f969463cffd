"""Making the pod network of `network.plan` real: namespaces, links, addresses, routes.

Links, addresses and routes are set with `ip -n NS -batch -` (iproute2), one process per
namespace and step: the trial's measured recipe (50 veth pairs in about 40 ms), and hairpin mode
on a bridge port is one `link set ... type bridge_slave hairpin on` line (pyroute2 0.9.7's
`brport("set", hairpin_mode=1)` returned without setting it). Namespaces are `ip netns add`
ones, so `ip netns exec` and `tinykube node exec` reach them by name.

Sockets inside a namespace: `socket_in(path, ...)` creates the socket on a short-lived thread
that has entered the namespace with setns(2) (it changes only the calling thread), so the
event loop's thread never leaves the host's namespace; a socket keeps the namespace it was
born in, so the loop then uses it as any other (the DNS listeners of every node, the
kubelet's probe connections). `SocketsIn(path)` keeps one such thread in the namespace
for a caller that makes a socket per connection (the host's NodePort relay), so each socket
costs a hand-off to that thread, not a new thread. Sysctls are written the same way:
/proc/sys/net is the opening thread's namespace's.

Nothing here touches the host's own namespace: every command names a namespace this cluster
made, and `remove_stale` deletes only names with the cluster's prefix.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from tinykube.network.plan import (
    API_RELAY_ADDRESS,
    NETNS_DIR,
    ClusterNetwork,
    NodeNetwork,
    PodNetwork,
)

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NODE_SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    # kube-proxy-style rules see bridged pod-to-pod traffic (same-node Service hairpin)
    "net/bridge/bridge-nf-call-iptables": "1",
    # `reject` answers are ICMP, rate-limited per peer by default: the first could be lost
    "net/ipv4/icmp_ratelimit": "0",
}


class NetworkError(RuntimeError):
    """An `ip` command failed; the message has its output."""


def _ip(args: list[str], script: str = "") -> None:
    result = subprocess.run(["ip", *args], input=script, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed: {result.stderr.strip()}\n{script}")


def batch(netns: str, lines: list[str]) -> None:
    """Run iproute2 commands (`link add ...`, `addr add ...`) in one namespace."""
    _ip(["-n", netns, "-batch", "-"], "\n".join(lines) + "\n")


def add(netns: str) -> None:
    _ip(["netns", "add", netns])


def delete(netns: str) -> None:
    """Remove a namespace's name; it goes when its last process and socket are gone."""
    with contextlib.suppress(NetworkError):
        _ip(["netns", "delete", netns])


def names() -> list[str]:
    directory = Path(NETNS_DIR)
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def remove_stale(prefix: str) -> list[str]:
    """Delete every namespace named with `prefix` (left by an earlier run); their names."""
    stale = [n for n in names() if n.startswith(prefix + "-")]
    for netns in stale:
        delete(netns)
    return stale


# --- entering a namespace from one thread ------------------------------------------------------

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def in_netns(path: str, action: Callable[[], T]) -> T:
    """Run `action` on a new thread that has entered the network namespace at `path`."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            target = os.open(path, os.O_RDONLY)
            try:
                _setns(target)  # this thread only; it ends right after
            finally:
                os.close(target)
            outcome.append(action())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"netns:{os.path.basename(path)}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def socket_in(path: str, family: int, kind: int) -> socket.socket:
    """A new socket that lives in the network namespace at `path`."""
    return in_netns(path, lambda: socket.socket(family, kind))


def _enter(path: str) -> None:
    target = os.open(path, os.O_RDONLY)
    try:
        _setns(target)
    finally:
        os.close(target)


class SocketsIn:
    """Makes sockets in the namespace at `path` on one thread that stays in it (see above)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"netns:{os.path.basename(path)}",
                                          initializer=_enter, initargs=(path,))

    def __repr__(self) -> str:
        return f"SocketsIn({self.path})"

    def __call__(self, family: int, kind: int) -> socket.socket:
        try:
            return self._thread.submit(socket.socket, family, kind).result()
        except BrokenExecutor as error:  # the thread could not enter the namespace
            raise OSError(f"cannot enter the network namespace {self.path}") from error

    def close(self) -> None:
        self._thread.shutdown(wait=False)


def bind_serving(sock: socket.socket, kind: int, address: tuple[str, int]) -> socket.socket:
    """`sock` bound at `address` (and for TCP listening), non-blocking; closed if that fails."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def bound_socket_in(path: str, family: int, kind: int,
                    address: tuple[str, int]) -> socket.socket:
    """A socket in the namespace at `path`, bound (and for TCP listening) at `address`."""
    return in_netns(path, lambda: bind_serving(socket.socket(family, kind), kind, address))


def write_sysctls(path: str, values: dict[str, str]) -> None:
    """Set namespaced sysctls (`net/ipv4/ip_forward` style keys) inside the namespace."""
    def write() -> None:
        for key, value in values.items():
            proc = Path("/proc/sys") / key
            if proc.exists():  # bridge-nf-call-* exist only with br_netfilter loaded
                proc.write_text(value)
    in_netns(path, write)


# --- the cluster's network --------------------------------------------------------------------

def create_cluster(plan: ClusterNetwork) -> None:
    """Make the underlay and every node namespace of `plan` (after removing stale ones)."""
    remove_stale(plan.prefix)
    add(plan.underlay_netns)
    lines = ["link set lo up", "link add ul0 type bridge", "link set ul0 up"]
    for node in plan.nodes:
        add(node.netns)
        lines += [f"link add {node.underlay_if} type veth peer name eth0 netns {node.netns}",
                  f"link set {node.underlay_if} master ul0 up"]
    batch(plan.underlay_netns, lines)
    for node in plan.nodes:
        _create_node(node)


def _create_node(node: NodeNetwork) -> None:
    lines = ["link set lo up", f"addr add {API_RELAY_ADDRESS}/32 dev lo",
             f"addr add {node.address}/16 dev eth0", "link set eth0 up",
             "link add cni0 type bridge", f"addr add {node.gateway}/{node.prefixlen} dev cni0",
             "link set cni0 up"]
    if node.dns_address:  # (none with --no-dns)
        lines.append(f"addr add {node.dns_address}/32 dev lo")
    lines += [f"route add {cidr} via {address}" for cidr, address in node.routes]
    if node.service_cidr:
        lines.append(f"route add {node.service_cidr} dev cni0 src {node.gateway}")
    batch(node.netns, lines)
    write_sysctls(node.netns_path, NODE_SYSCTLS)


def addresses(netns: str, device: str) -> set[str]:
    """The IPv4 addresses (ADDRESS/PREFIXLEN) of `device` in `netns` (none if either is
    missing)."""
    if not Path(NETNS_DIR, netns).exists():
        return set()
    done = subprocess.run(["ip", "-n", netns, "-j", "-4", "addr", "show", "dev", device],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return set()
    return {f"{a['local']}/{a['prefixlen']}" for link in json.loads(done.stdout or "[]")
            for a in link.get("addr_info", [])}


def node_intact(node: NodeNetwork) -> bool:
    """Whether `node`'s namespace is there as made: its eth0 and bridge with their addresses
    (left by an earlier run of the same node that was killed)."""
    return f"{node.address}/16" in addresses(node.netns, "eth0") and \
        f"{node.gateway}/{node.prefixlen}" in addresses(node.netns, "cni0")


def pod_intact(pod: PodNetwork) -> bool:
    """Whether `pod`'s namespace is there with its eth0 at its address."""
    return f"{pod.address}/{pod.prefixlen}" in addresses(pod.netns, "eth0")


def join_cluster(plan: ClusterNetwork) -> bool:
    """Make the joining node of `plan` (`plan.joined_network`) with its eth0 on the existing
    underlay's bridge (after removing stale namespaces of this prefix). A node whose namespace
    an earlier run left intact (`node_intact`: that run was killed) keeps it and its pods'
    namespaces, as a kubelet restarted on its host keeps the host's network and the running
    pods' sandboxes; True then."""
    if not Path(NETNS_DIR, plan.underlay_netns).exists():
        raise NetworkError(f"no network namespace {plan.underlay_netns} to join")
    node = plan.nodes[0]
    if node_intact(node):
        write_sysctls(node.netns_path, NODE_SYSCTLS)
        return True
    remove_stale(plan.prefix)
    add(node.netns)
    batch(plan.underlay_netns, [
        f"link add {node.underlay_if} type veth peer name eth0 netns {node.netns}",
        f"link set {node.underlay_if} master ul0 up"])
    _create_node(node)
    return False


def replace_routes(node: NodeNetwork, routes: dict[str, str], gone: set[str]) -> None:
    """In `node`'s namespace: a route to each pod range via its next hop; none to `gone`."""
    lines = [f"route replace {cidr} via {hop}" for cidr, hop in sorted(routes.items())]
    lines += [f"route del {cidr}" for cidr in sorted(gone)]
    if lines:
        batch(node.netns, lines)


def destroy_cluster(plan: ClusterNetwork) -> None:
    """Remove every namespace of this cluster: nodes, pods, the underlay."""
    remove_stale(plan.prefix)


def attach_pod(node: NodeNetwork, pod: PodNetwork) -> None:
    """Make the pod's namespace with its eth0 on the node's bridge (hairpin on)."""
    delete(pod.netns)  # a leftover of an earlier attempt for the same pod
    add(pod.netns)
    try:
        batch(node.netns, [
            f"link add {pod.host_if} type veth peer name eth0 netns {pod.netns}",
            f"link set {pod.host_if} master cni0",
            f"link set {pod.host_if} type bridge_slave hairpin on",
            f"link set {pod.host_if} up"])
        batch(pod.netns, ["link set lo up", f"addr add {pod.address}/{pod.prefixlen} dev eth0",
                          "link set eth0 up", f"route add default via {pod.gateway}"])
    except NetworkError:
        detach_pod(node, pod)
        raise


def detach_pod(node: NodeNetwork, pod: PodNetwork) -> None:
    """Remove the pod's namespace and its veth (which would go with the namespace anyway once
    its last process is gone; removing it now frees the address on the bridge at once)."""
    with contextlib.suppress(NetworkError):
        batch(node.netns, [f"link delete {pod.host_if}"])
    delete(pod.netns)
