"""The `container` runtime end to end: real runc, a real local registry, `tinykube up --network
netns` (where `container` is the default runtime) and both kubectls.

The busybox test image (`oci_registry.build_busybox`: Entrypoint /bin/httpd, Cmd `-f -p 8080`,
Env PATH=/bin, WorkingDir /www) is pushed to a plain registry and to a token-auth one on the
same storage. Pods without a command run the image's entrypoint; a client pod fetches the page
over the pod network. After each test its pods are deleted and nothing of them may be left:
no runc container under the node's runc root, no process in their cgroups, no mount.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import KUBECTLS, Cluster, Kubectl, start_cluster, until
from tests.integration import oci_registry
from tests.integration.test_kubectl_exec import in_terminal

pytestmark = [
    pytest.mark.root, pytest.mark.slow, pytest.mark.usefixtures("host_network_unchanged"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runc") is None
                       or bool(oci_registry.missing_tools()),
                       reason="needs root, runc and the registry tools"),
]
NODES = ("c-node1", "c-node2")


@dataclass
class Env:
    cluster: Cluster
    plain: oci_registry.Registry
    secure: oci_registry.Registry
    output: list[str]

    @property
    def image(self) -> str:
        return f"{self.plain.host}/demo/busybox:1"

    def runc_root(self, node: str) -> Path:
        return self.cluster.data_dir / "kubelet" / node / "runc"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("container-runtime")
    layout = oci_registry.build_busybox(work, "1")
    storage = work / "registry-data"
    with oci_registry.TokenServer(work, {"alice": "s3cret"}) as tokens, \
            oci_registry.registry(work, storage) as plain, \
            oci_registry.registry(work, storage, tokens) as secure:
        oci_registry.push(layout, "1", f"{plain.host}/demo/busybox:1")
        cluster = start_cluster(work / "data", "--network", "netns", "--nodes", ",".join(NODES),
                                timeout=60)
        try:
            yield Env(cluster, plain, secure, cluster.output)
        finally:
            cluster.stop()
        for node in NODES:  # the agent deleted every container it ran
            root = work / "data" / "kubelet" / node / "runc"
            assert _runc_list(root) == []
        assert mounts_under(work) == []  # and unmounted every root filesystem and volume


def _runc_list(root: Path) -> list[str]:
    if not root.exists():
        return []
    done = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True,
                          text=True, check=False)
    return done.stdout.split()


def mounts_under(directory: Path) -> list[str]:
    """The mount points in this mount namespace at or below `directory`
    (/proc/self/mountinfo's fifth field, octal escapes undone)."""
    prefix = str(directory.resolve())
    points = [line.split()[4].encode().decode("unicode_escape")
              for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


@pytest.fixture(params=[b for _, b in KUBECTLS], ids=[n for n, _ in KUBECTLS])
def kctl(request: pytest.FixtureRequest, env: Env, tmp_path: Path) -> Iterator[Kubectl]:
    cache = tmp_path / "kubecache"
    cache.mkdir()
    k = Kubectl(request.param, env.cluster.kubeconfig, cache)
    yield k
    names = k("get", "pods", "-o", "name").split()
    if names:
        k("delete", "--wait=true", "--timeout=60s", *names, timeout=90)
    for node in NODES:
        until(lambda n=node: _runc_list(env.runc_root(n)) == [], 30,  # type: ignore[misc]
              f"no runc containers left on {node}")
    containers = env.cluster.data_dir / "kubelet"
    until(lambda: not [p for p in mounts_under(containers) if "/containers/" in p], 30,
          "no root filesystem left mounted")


def _pod(name: str, image: str, node: str = NODES[0], **container: object) -> str:
    spec = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                     "restartPolicy": container.pop("restartPolicy", "Always"),
                     "containers": [{"name": "c", "image": image, **container}]}}
    return json.dumps(spec)


def _status(k: Kubectl, name: str) -> dict[str, object]:
    return json.loads(k("get", "pod", name, "-o", "json"))["status"]  # type: ignore[no-any-return]


def _container(k: Kubectl, name: str) -> dict[str, object]:
    statuses = _status(k, name).get("containerStatuses") or [{}]
    return statuses[0]  # type: ignore[index,no-any-return]


def _ready(k: Kubectl, name: str) -> bool:
    return bool(_container(k, name).get("ready"))


def _events(k: Kubectl, name: str) -> list[tuple[str, str]]:
    out = json.loads(k("get", "events", "--field-selector", f"involvedObject.name={name}",
                       "-o", "json"))
    return [(e["reason"], e["message"]) for e in out["items"]]


def test_up_says_container_is_the_default(env: Env) -> None:
    assert any(line.startswith("default runtime: container (runc is installed")
               for line in env.output)


def test_entrypoint_serves_http_to_a_client_pod(env: Env, kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=_pod("web", env.image,
                                        readinessProbe={"httpGet": {"port": 8080},
                                                        "periodSeconds": 1}))
    kctl("apply", "-f", "-", input=_pod("client", env.image, node=NODES[1],
                                        command=["/bin/busybox", "sleep", "3600"]))
    until(lambda: _ready(kctl, "web") and _ready(kctl, "client"), 60, "both pods ready")
    ip = _status(kctl, "web")["podIP"]
    page = kctl("exec", "client", "--", "wget", "-qO-", f"http://{ip}:8080/index.html")
    assert page == "<h1>hello from busybox httpd</h1>\n"
    status = _container(kctl, "web")
    assert status["image"] == env.image
    assert str(status["imageID"]).startswith(f"{env.plain.host}/demo/busybox@sha256:")
    assert str(status["containerID"]).startswith("runc://")
    reasons = [r for r, _ in _events(kctl, "web")]
    assert {"Created", "Started"} <= set(reasons)
    messages = dict(_events(kctl, "web"))
    pulled = messages["Pulled"]
    assert pulled.startswith((f'Successfully pulled image "{env.image}" in ',
                              f'Container image "{env.image}" already present on machine'))
    node = json.loads(kctl("get", "node", NODES[0], "-o", "json"))
    names = [n for i in node["status"].get("images", []) for n in i["names"]]
    assert status["imageID"] in names and env.image in names
    # the cluster DNS through the pod's resolv.conf
    answer = kctl("exec", "client", "--", "/bin/busybox", "nslookup",
                  "kubernetes.default.svc.cluster.local")
    assert "10.96.0.1" in answer
    # the image's own names inside: hostname, pod's /etc/hosts
    assert kctl("exec", "web", "--", "cat", "/etc/hostname") == "web\n"
    assert "\tweb" in kctl("exec", "web", "--", "cat", "/etc/hosts")


@pytest.mark.parametrize(("container", "expected"), [
    pytest.param({"command": ["sh", "-c", 'echo "$PATH $(pwd) $GREETING"'],
                  "env": [{"name": "GREETING", "value": "hi"}]},
                 "/bin /www hi\n", id="image-env-and-workdir"),
    pytest.param({"command": ["sh", "-c", "pwd"], "workingDir": "/www/old"},
                 "/www/old\n", id="workingDir-overrides"),
    pytest.param({"args": ["--help"], "command": ["/bin/busybox", "echo"]},
                 "--help\n", id="command-and-args"),
    pytest.param({"command": ["sh", "-c", "echo $0 $1", "x"], "args": ["y"]},
                 "x y\n", id="args-after-command"),
])
def test_command_args_env_workdir(env: Env, kctl: Kubectl, container: dict[str, object],
                                  expected: str) -> None:
    kctl("apply", "-f", "-", input=_pod("once", env.image, restartPolicy="Never", **container))
    until(lambda: _status(kctl, "once").get("phase") == "Succeeded", 60, "the pod succeeded")
    assert kctl("logs", "once") == expected


def test_exit_codes_restarts_and_oom(env: Env, kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=_pod("three", env.image, restartPolicy="Never",
                                        command=["sh", "-c", "echo out; exit 3"]))
    kctl("apply", "-f", "-", input=_pod("again", env.image, restartPolicy="Always",
                                        command=["sh", "-c", "exit 1"]))
    kctl("apply", "-f", "-", input=_pod(
        "hog", env.image, restartPolicy="Never",
        command=["/bin/busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        resources={"limits": {"memory": "16Mi"}}))

    def terminated(name: str) -> dict[str, object] | None:
        state = _container(kctl, name).get("state") or {}
        return state.get("terminated")  # type: ignore[attr-defined,no-any-return]

    three = until(lambda: terminated("three"), 60, "three terminated")
    assert (three["exitCode"], three["reason"]) == (3, "Error")
    assert kctl("logs", "three") == "out\n"
    hog = until(lambda: terminated("hog"), 60, "hog terminated")
    assert (hog["exitCode"], hog["reason"]) == (137, "OOMKilled")
    until(lambda: int(_container(kctl, "again").get("restartCount") or 0) >= 1, 60,
          "a restart")


def test_wrong_image_name_backs_off(env: Env, kctl: Kubectl) -> None:
    image = f"{env.plain.host}/demo/nope:1"
    kctl("apply", "-f", "-", input=_pod("nope", image))

    def waiting() -> str:
        state = _container(kctl, "nope").get("state") or {}
        return str((state.get("waiting") or {}).get("reason", ""))  # type: ignore[attr-defined]

    until(lambda: waiting() == "ErrImagePull", 30, "ErrImagePull")
    until(lambda: waiting() == "ImagePullBackOff", 40, "ImagePullBackOff")
    events = _events(kctl, "nope")
    ref = f"{env.plain.host}/demo/nope:1"
    assert ("Failed", f'Failed to pull image "{image}": rpc error: code = NotFound desc = '
            f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
            f"{ref}: not found") in events
    assert ("Failed", "Error: ErrImagePull") in events
    assert ("BackOff", f'Back-off pulling image "{image}"') in events
    until(lambda: "ImagePullBackOff" in kctl("get", "pod", "nope"), 15, "kubectl's STATUS")


@pytest.mark.parametrize(("password", "ready"), [
    pytest.param("wrong", False, id="wrong-password"),
    pytest.param("s3cret", True, id="right-password"),
])
def test_pull_secret_on_a_token_registry(env: Env, kctl: Kubectl, password: str,
                                         ready: bool) -> None:
    host = env.secure.host
    kctl("delete", "secret", "regcred", "--ignore-not-found")
    kctl("create", "secret", "docker-registry", "regcred", f"--docker-server={host}",
         "--docker-username=alice", f"--docker-password={password}")
    pod = json.loads(_pod("private", f"{host}/demo/busybox:1"))
    pod["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
    kctl("apply", "-f", "-", input=json.dumps(pod))
    if ready:
        until(lambda: _ready(kctl, "private"), 60, "the private image running")
    else:
        until(lambda: any("401 Unauthorized" in m for r, m in _events(kctl, "private")
                          if r == "Failed"), 30, "the 401 reason in an event")
    kctl("delete", "secret", "regcred")


def test_deleting_a_pod_leaves_nothing(env: Env, kctl: Kubectl) -> None:
    kctl("apply", "-f", "-", input=_pod("gone", env.image))
    until(lambda: _container(kctl, "gone").get("state", {}).get("running"), 60,  # type: ignore[attr-defined]
          "running")
    until(lambda: len(_runc_list(env.runc_root(NODES[0]))) == 1, 10, "the runc container")
    cid = str(_container(kctl, "gone")["containerID"]).removeprefix("runc://")
    kctl("delete", "pod", "gone", "--wait=true", timeout=60)
    until(lambda: _runc_list(env.runc_root(NODES[0])) == [], 30, "no runc container")
    mounts = Path("/proc/self/mounts").read_text()
    assert cid not in mounts
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert cid not in procs


def test_host_mode_runs_runtime_class_container(env: Env, tmp_path: Path) -> None:
    host = start_cluster(tmp_path / "data", "--no-dns", "--nodes", "h-node1", timeout=60)
    try:
        assert any(line.startswith("default runtime: virtual (--network host")
                   for line in host.output)
        (tmp_path / "cache").mkdir()
        k = Kubectl(KUBECTLS[0][1], host.kubeconfig, tmp_path / "cache")
        pod = json.loads(_pod("hostnet", env.image, node="h-node1", restartPolicy="Never",
                              command=["sh", "-c", "cat /etc/hostname; ls /sys/class/net"]))
        pod["spec"]["runtimeClassName"] = "container"
        k("apply", "-f", "-", input=json.dumps(pod))
        until(lambda: _status(k, "hostnet").get("phase") == "Succeeded", 60, "the pod ran")
        out = k("logs", "hostnet").split()
        assert out[0] == "hostnet" and "lo" in out  # its own hostname, the host's network
        # the host's links beside lo (other clusters may add or remove some meanwhile)
        assert len(set(out[1:]) & set(os.listdir("/sys/class/net"))) > 1
        k("delete", "pod", "hostnet", "--wait=true", timeout=60)
    finally:
        host.stop()
    assert _runc_list(tmp_path / "data" / "kubelet" / "h-node1" / "runc") == []


def test_kubectl_run_attaches_to_the_image(env: Env, kctl: Kubectl) -> None:
    out = kctl("run", "talk", "-i", "--rm", "--restart=Never", f"--image={env.image}",
               f"--overrides={json.dumps({'spec': {'nodeName': NODES[1]}})}", "--command",
               "--", "sh", "-c", "read line; echo got $line", input="hello\n", timeout=90)
    assert "got hello" in out


def test_kubectl_run_it_gets_a_terminal_in_the_image(env: Env, kctl: Kubectl) -> None:
    # the container's terminal is the shim's: `tty` names it, the typed line comes through it
    overrides = json.dumps({"spec": {"nodeName": NODES[0]}})
    result = in_terminal(kctl, "run", "term", "-it", "--rm", "--restart=Never",
                         f"--image={env.image}", f"--overrides={overrides}", "--command", "--",
                         "sh", "-c", "tty; read line; echo got-$line; exit 4", typed="hello\n")
    output = result.stdout.replace("\r", "")
    assert "/dev/pts/" in output and "got-hello\n" in output, output
    assert result.returncode == 4


def test_init_container_then_app_and_exec_stdin(env: Env, kctl: Kubectl) -> None:
    pod = json.loads(_pod("inits", env.image, command=["/bin/busybox", "sleep", "3600"]))
    pod["spec"]["initContainers"] = [{"name": "init", "image": env.image,
                                      "command": ["sh", "-c", "echo init ran"]}]
    kctl("apply", "-f", "-", input=json.dumps(pod))
    until(lambda: _ready(kctl, "inits"), 60, "the app container after its init container")
    init = _status(kctl, "inits")["initContainerStatuses"][0]  # type: ignore[index]
    assert init["state"]["terminated"]["exitCode"] == 0
    assert kctl("logs", "inits", "-c", "init") == "init ran\n"
    assert kctl("exec", "-i", "inits", "--", "cat", input="through stdin\n") == "through stdin\n"


SEED = (Path(__file__).resolve().parent.parent / "testdata" / "web.yaml").read_text()


def test_the_seed_statefulset_serves_its_host_path(env: Env, kctl: Kubectl,
                                                   tmp_path: Path) -> None:
    """The seed's manifest as written, but for three things CI needs: the image is the local
    registry's busybox httpd (no command: its entrypoint runs, on the seed's port 80), the
    document root it mounts is that image's (/www), and the hostPath is a test directory
    instead of the host's /mydir."""
    docroot = tmp_path / "mydir"
    docroot.mkdir()
    (docroot / "index.html").write_text("written into mydir\n")
    manifest = (SEED.replace("image: nginx:1.11", f"image: {env.image}\n        args: "
                             '["-f", "-p", "80"]')
                .replace("mountPath: /usr/share/nginx/html", "mountPath: /www")
                .replace("path: /mydir", f"path: {docroot}"))
    kctl("label", "node", NODES[1], "node=kube-node3", "--overwrite")
    try:
        kctl("apply", "-f", "-", input=manifest)
        kctl("apply", "-f", "-", input=_pod("client", env.image,
                                            command=["/bin/busybox", "sleep", "3600"]))
        until(lambda: _ready(kctl, "web-0") and _ready(kctl, "client"), 90, "web-0 and client")
        assert _status(kctl, "web-0").get("hostIP") != _status(kctl, "client").get("hostIP")
        page = kctl("exec", "client", "--", "wget", "-qO-", "http://web-0.nginx/")
        assert page == "written into mydir\n"
    finally:
        # busybox httpd as PID 1 ignores SIGTERM: orphan the pod and delete it with a 1 s
        # grace instead of waiting out the seed's 30 s
        kctl("delete", "-f", "-", "--cascade=orphan", input=manifest, check=False)
        kctl("delete", "pod", "web-0", "--grace-period=1", "--ignore-not-found", check=False)
        kctl("label", "node", NODES[1], "node-")
