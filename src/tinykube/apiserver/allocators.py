"""Cluster IP and NodePort allocation, as kube-apiserver does it on Service create and update.

The allocators hold only the set of addresses and ports in use; that set is rebuilt from the
stored Services at start (as kube-apiserver's repair loop does), so allocations survive restarts
without a table of their own. Handing out is sequential from a moving cursor, skipping what is
in use; a released address is not reused until the cursor comes round again, so a deleted
Service's IP is not immediately given to the next one.

The first address of the range belongs to the `kubernetes` Service and the tenth to `kube-dns`
(`reserved`), as in a kubeadm cluster: dynamic allocation never hands them out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import secrets
from typing import Any

from tinykube.api.errors import FieldError

NODE_PORT_RANGE = (30000, 32767)


class RangeFull(Exception):
    pass


class IPAllocator:
    def __init__(self, cidr: str, *, reserved: tuple[int, ...] = (1, 10)) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self._first = int(self.network.network_address) + 1
        self._last = int(self.network.broadcast_address) - 1
        self._reserved = {self._first + offset - 1 for offset in reserved}
        self._used: set[int] = set()
        self._cursor = self._first

    def __repr__(self) -> str:
        return f"IPAllocator({self.network}, used={len(self._used)})"

    def nth(self, n: int) -> str:
        """The n-th address of the range (1-based): nth(1) is the kubernetes Service's."""
        return str(ipaddress.ip_address(self._first + n - 1))

    def contains(self, ip: str) -> bool:
        try:
            value = int(ipaddress.ip_address(ip))
        except ValueError:
            return False
        return self._first <= value <= self._last

    def in_use(self, ip: str) -> bool:
        return int(ipaddress.ip_address(ip)) in self._used

    def reserve(self, ip: str) -> None:
        self._used.add(int(ipaddress.ip_address(ip)))

    def release(self, ip: str) -> None:
        with contextlib.suppress(ValueError):
            self._used.discard(int(ipaddress.ip_address(ip)))

    def scatter(self) -> None:
        """Start the cursor at a random address (API servers sharing allocations)."""
        self._cursor = secrets.randbelow(self._last - self._first + 1) + self._first

    def allocate(self) -> str:
        size = self._last - self._first + 1
        for _ in range(size):
            candidate = self._cursor
            self._cursor = self._first if self._cursor >= self._last else self._cursor + 1
            if candidate not in self._used and candidate not in self._reserved:
                self._used.add(candidate)
                return str(ipaddress.ip_address(candidate))
        raise RangeFull(f"no addresses left in {self.network}")


class PortAllocator:
    def __init__(self, low: int = NODE_PORT_RANGE[0], high: int = NODE_PORT_RANGE[1]) -> None:
        self.low, self.high = low, high
        self._used: set[int] = set()
        self._cursor = low

    def __repr__(self) -> str:
        return f"PortAllocator({self.low}-{self.high}, used={len(self._used)})"

    def contains(self, port: int) -> bool:
        return self.low <= port <= self.high

    def in_use(self, port: int) -> bool:
        return port in self._used

    def reserve(self, port: int) -> None:
        self._used.add(port)

    def release(self, port: int) -> None:
        self._used.discard(port)

    def scatter(self) -> None:
        self._cursor = secrets.randbelow(self.high - self.low + 1) + self.low

    def allocate(self) -> int:
        for _ in range(self.high - self.low + 1):
            candidate = self._cursor
            self._cursor = self.low if self._cursor >= self.high else self._cursor + 1
            if candidate not in self._used:
                self._used.add(candidate)
                return candidate
        raise RangeFull(f"no node ports left in {self.low}-{self.high}")


@dataclasses.dataclass
class Taken:
    """What one allocation reserved: the addresses and NodePorts to give back on undo."""

    ips: list[str] = dataclasses.field(default_factory=list)
    ports: list[int] = dataclasses.field(default_factory=list)


def _needs_node_ports(spec: dict[str, Any]) -> bool:
    kind = spec.get("type", "ClusterIP")
    return kind == "NodePort" or (
        kind == "LoadBalancer" and bool(spec.get("allocateLoadBalancerNodePorts", True)))


class ServiceAllocator:
    """Applies both allocators to a Service spec; returns field errors instead of raising."""

    def __init__(self, service_cidr: str) -> None:
        self.ips = IPAllocator(service_cidr)
        self.ports = PortAllocator()

    def __repr__(self) -> str:
        return f"ServiceAllocator({self.ips!r}, {self.ports!r})"

    def scatter(self) -> None:
        self.ips.scatter()
        self.ports.scatter()

    def restore(self, spec: dict[str, Any]) -> None:
        """Mark a stored Service's addresses and ports as used (at start-up)."""
        for ip in spec.get("clusterIPs") or []:
            if ip != "None" and self.ips.contains(ip):
                self.ips.reserve(ip)
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                self.ports.reserve(int(port["nodePort"]))

    def release(self, spec: dict[str, Any]) -> None:
        for ip in spec.get("clusterIPs") or []:
            if ip != "None":
                self.ips.release(ip)
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                self.ports.release(int(port["nodePort"]))

    def allocate(self, spec: dict[str, Any], old: dict[str, Any] | None = None,
                 ) -> tuple[list[FieldError], Taken]:
        """Fill clusterIP(s) and nodePorts in `spec` (a fresh copy owned by the caller).

        Returns the field errors and what this call reserved, which the caller gives back with
        `undo` when the write does not happen (an error, a dry run). Only that: an address
        refused because another Service holds it stays that Service's.
        """
        taken = Taken()
        errs = self._allocate_ip(spec, old, taken)
        errs += self._allocate_node_ports(spec, old, taken)
        return errs, taken

    def undo(self, taken: Taken) -> None:
        for ip in taken.ips:
            self.ips.release(ip)
        for port in taken.ports:
            self.ports.release(port)

    def _allocate_ip(self, spec: dict[str, Any], old: dict[str, Any] | None,
                     taken: Taken) -> list[FieldError]:
        if spec.get("type") == "ExternalName":
            return []
        old_ip = (old or {}).get("clusterIP") or ""
        requested = spec.get("clusterIP") or ((spec.get("clusterIPs") or [""])[0])
        if requested == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return []
        if old_ip and old_ip != "None" and requested in ("", old_ip):
            spec["clusterIP"], spec["clusterIPs"] = old_ip, [old_ip]
            return []
        if requested:
            if not self.ips.contains(requested):
                return [FieldError.invalid(
                    "spec.clusterIPs", [requested],
                    f"failed to allocate IP {requested}: the provided IP ({requested}) is not "
                    f"in the valid range. The range of valid IPs is {self.ips.network}")]
            if self.ips.in_use(requested):
                return [FieldError.invalid(
                    "spec.clusterIPs", [requested],
                    f"failed to allocate IP {requested}: provided IP is already allocated")]
            self.ips.reserve(requested)
        else:
            try:
                requested = self.ips.allocate()
            except RangeFull as exc:
                return [FieldError.invalid("spec.clusterIPs", [], str(exc))]
        taken.ips.append(requested)
        spec["clusterIP"], spec["clusterIPs"] = requested, [requested]
        return []

    def _allocate_node_ports(self, spec: dict[str, Any], old: dict[str, Any] | None,
                             taken: Taken) -> list[FieldError]:
        if not _needs_node_ports(spec):
            return []
        old_ports = {(p.get("port"), p.get("protocol")): p.get("nodePort")
                     for p in (old or {}).get("ports") or [] if p.get("nodePort")}
        errs: list[FieldError] = []
        for i, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort")
            kept = old_ports.get((port.get("port"), port.get("protocol")))
            if wanted and wanted == kept:
                continue
            if not wanted and kept:
                port["nodePort"] = kept
                continue
            if wanted:
                if not self.ports.contains(int(wanted)):
                    errs.append(FieldError.invalid(
                        f"spec.ports[{i}].nodePort", wanted,
                        f"provided port is not in the valid range. The range of valid ports is "
                        f"{self.ports.low}-{self.ports.high}"))
                elif self.ports.in_use(int(wanted)):
                    errs.append(FieldError.invalid(f"spec.ports[{i}].nodePort", wanted,
                                                   "provided port is already allocated"))
                else:
                    self.ports.reserve(int(wanted))
                    taken.ports.append(int(wanted))
                continue
            try:
                port["nodePort"] = self.ports.allocate()
                taken.ports.append(port["nodePort"])
            except RangeFull as exc:
                errs.append(FieldError.invalid(f"spec.ports[{i}].nodePort", 0, str(exc)))
        return errs
