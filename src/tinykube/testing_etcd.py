"""A throwaway etcd cluster on loopback ports (tests and benchmarks).

`start_etcd(tmp)` runs Debian's `/usr/bin/etcd` `size` times (free client and peer ports, a data
directory each under `tmp`, `--unsafe-no-fsync` where the etcd has it), waits until the cluster
answers a quorum read through `etcdctl`, and returns the members; `stop` kills each by its PID.
With `hosts` (`testing_netns_hosts.HostNetwork`) member i runs in network-namespace host i and
talks to its peers across the hosts' switch, whose links a test can cut; its clients reach it
through a loopback relay (`ClientRelays`) that does not cross the switch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tinykube.testing import free_port
from tinykube.testing_netns_hosts import ClientRelays, HostNetwork

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
IN_HOST_CLIENT_PORT, IN_HOST_PEER_PORT = 2379, 2380  # etcd's own, in a namespace host
START_ATTEMPTS = 3


@dataclasses.dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"


@dataclasses.dataclass
class EtcdCluster:
    members: list[Member]
    tls: Path | None = None  # ca.crt, client.crt, client.key there; the members require them
    hosts: HostNetwork | None = None  # the members' hosts, if they run in namespaces
    relays: ClientRelays | None = None  # the clients' way into those hosts

    @property
    def url(self) -> str:
        scheme = "etcds" if self.tls else "etcd"
        return f"{scheme}://" + ",".join(m.endpoint for m in self.members)

    def etcdctl(self, *args: str) -> str:
        env = {**os.environ, "ETCDCTL_API": "3"}
        endpoints = ",".join(m.endpoint for m in self.members)
        certs = [f"--cacert={self.tls / 'ca.crt'}", f"--cert={self.tls / 'client.crt'}",
                 f"--key={self.tls / 'client.key'}"] if self.tls else []
        return subprocess.run([ETCDCTL, f"--endpoints={endpoints}", *certs, *args], env=env,
                              check=True, capture_output=True, text=True, timeout=20).stdout

    def leader(self) -> Member:
        """The member that leads the cluster now (`etcdctl endpoint status` of each member)."""
        statuses = json.loads(self.etcdctl("endpoint", "status", "-w", "json"))
        by_endpoint = {m.endpoint: m for m in self.members}
        for status in statuses:
            if status["Status"]["header"]["member_id"] == status["Status"]["leader"]:
                return by_endpoint[status["Endpoint"]]
        raise RuntimeError(f"no member leads: {statuses}")

    def move_leader(self, to: Member, timeout: float = 10) -> None:
        """Make `to` the leader (`etcdctl move-leader`, sent to the leader), if it is not."""
        deadline = time.monotonic() + timeout
        while (leader := self.leader()) is not to:
            statuses = json.loads(self.etcdctl("endpoint", "status", "-w", "json"))
            ids = {s["Endpoint"]: s["Status"]["header"]["member_id"] for s in statuses}
            env = {**os.environ, "ETCDCTL_API": "3"}
            subprocess.run([ETCDCTL, f"--endpoints={leader.endpoint}", "move-leader",
                            f"{ids[to.endpoint]:x}"], env=env, capture_output=True, text=True,
                           timeout=20, check=False)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{to.name} did not become the leader")
            time.sleep(0.2)

    def stop(self) -> None:
        for member in self.members:
            if member.process.poll() is None:
                os.kill(member.process.pid, signal.SIGKILL)
                member.process.wait(timeout=10)
        if self.relays is not None:
            self.relays.close()
        if self.hosts is not None:
            self.hosts.close()


class PortTaken(RuntimeError):
    """A member could not listen: another process took its free port first."""


def start_etcd(tmp: Path, size: int = 3, timeout: float = 30,
               tls: Path | None = None, hosts: HostNetwork | None = None) -> EtcdCluster:
    """`tls`: a directory with ca.crt and server.crt/.key (for 127.0.0.1) the members serve
    clients with, requiring client certificates of that CA (`make_tls` makes them). A port
    found free may be taken by another process before etcd listens on it (tests run side by
    side): then the cluster starts again on other ports, up to START_ATTEMPTS times."""
    for attempt in range(START_ATTEMPTS):
        try:
            return _start(tmp, size, timeout, tls, hosts)
        except PortTaken:
            if attempt == START_ATTEMPTS - 1:
                raise
            for i in range(size):
                shutil.rmtree(tmp / f"etcd-m{i}", ignore_errors=True)
    raise AssertionError("unreachable")


def _start(tmp: Path, size: int, timeout: float, tls: Path | None,
           hosts: HostNetwork | None) -> EtcdCluster:
    client_scheme = "https" if tls else "http"
    client_tls = [f"--trusted-ca-file={tls / 'ca.crt'}", "--client-cert-auth",
                  f"--cert-file={tls / 'server.crt'}", f"--key-file={tls / 'server.key'}"] \
        if tls else []
    relays = None
    if hosts is not None:  # in its host, each listens on the same ports
        relays = ClientRelays(hosts, IN_HOST_CLIENT_PORT)
        ports = [(relay, IN_HOST_PEER_PORT) for relay in relays.ports]
        peers = [f"http://{hosts.address(i)}:{IN_HOST_PEER_PORT}" for i in range(size)]
    else:
        ports = [(free_port(udp=False), free_port(udp=False)) for _ in range(size)]
        peers = [f"http://127.0.0.1:{peer}" for _, peer in ports]
    initial = ",".join(f"m{i}={url}" for i, url in enumerate(peers))
    members = []
    for i, (client, peer) in enumerate(ports):
        log = (tmp / f"etcd-m{i}.log").open("wb")
        listen = IN_HOST_CLIENT_PORT if hosts is not None else client
        argv = [
            ETCD, "--name", f"m{i}", "--data-dir", str(tmp / f"etcd-m{i}"),
            "--listen-client-urls", f"{client_scheme}://127.0.0.1:{listen}",
            "--advertise-client-urls", f"{client_scheme}://127.0.0.1:{client}", *client_tls,
            "--listen-peer-urls", peers[i],
            "--initial-advertise-peer-urls", peers[i],
            "--initial-cluster", initial, "--initial-cluster-state", "new",
            "--initial-cluster-token", f"tinykube-test-{os.getpid()}",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--unsafe-no-fsync" if _has_no_fsync() else "--quota-backend-bytes=0",
        ]
        process = subprocess.Popen(hosts.command(i, argv) if hosts is not None else argv,
                                   stdout=log, stderr=subprocess.STDOUT)
        members.append(Member(f"m{i}", client, peer, process))
    cluster = EtcdCluster(members, tls, hosts, relays)
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster.etcdctl("get", "health-probe")
            return cluster
        except subprocess.CalledProcessError:
            _check_running(cluster, tmp)
            if time.monotonic() > deadline:
                cluster.stop()
                raise
            time.sleep(0.2)


def _check_running(cluster: EtcdCluster, tmp: Path) -> None:
    """Raise if a member has exited (PortTaken if it could not listen), with its log."""
    for i, member in enumerate(cluster.members):
        if member.process.poll() is None:
            continue
        cluster.stop()
        text = (tmp / f"etcd-m{i}.log").read_text(errors="replace")
        if "address already in use" in text:
            raise PortTaken(f"etcd member {member.name} could not listen:\n{text[-2000:]}")
        raise RuntimeError(f"etcd member {member.name} exited "
                           f"({member.process.returncode}):\n{text[-2000:]}")


def _has_no_fsync() -> bool:
    out = subprocess.run([ETCD, "--help"], capture_output=True, text=True, timeout=10)
    return "--unsafe-no-fsync" in out.stdout + out.stderr


def make_tls(directory: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    directory.mkdir(parents=True, exist_ok=True)

    def write(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def issue(name: str, issuer: x509.Name | None, signer: ec.EllipticCurvePrivateKey | None,
              usage: list[x509.ObjectIdentifier] | None) -> tuple[x509.Certificate,
                                                                   ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(issuer or subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)))
        if usage is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                            critical=True)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False) \
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer or key, hashes.SHA256()), key

    ca, ca_key = issue("test-etcd-ca", None, None, None)
    write("ca", ca, ca_key)
    write("server", *issue("etcd", ca.subject, ca_key, [ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]))
    write("client", *issue("tinykube", ca.subject, ca_key, [ExtendedKeyUsageOID.CLIENT_AUTH]))
    return directory
