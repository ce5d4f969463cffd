"""The pytest plugin (tinykube.pytest_plugin), through pytester: inner test sessions use its
fixtures as a user's suite would, in a subprocess, so that what the session leaves behind
(processes, data directories) can be checked after it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.integration.plugin_sessions import data_dirs, plugin_args, tinykube_processes

pytest_plugins = ["pytester"]

USER_TESTS = textwrap.dedent('''
    import asyncio
    import os
    import subprocess

    import dns.resolver
    import pytest

    WEB = """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 2
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers: [{name: web, image: nginx}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      selector: {app: web}
      ports: [{port: 80}]
    """
    SEEN = []


    def test_service_resolves_through_cluster_dns(tinykube_cluster, k8s_namespace):
        k8s_namespace.apply(WEB)
        k8s_namespace.wait_for("deployment/web", "condition=Available")
        ip = k8s_namespace.kubectl("get", "service", "web",
                                   "-o", "jsonpath={.spec.clusterIP}").stdout
        host, port = tinykube_cluster.dns_address
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = [host], port
        answer = resolver.resolve(f"web.{k8s_namespace.name}.svc.cluster.local", "A")
        assert [r.address for r in answer] == [ip]


    def test_kubeconfig_defaults_to_the_namespace(k8s_namespace):
        SEEN.append(k8s_namespace.name)
        subprocess.run(["kubectl", "create", "configmap", "only-here"], check=True,
                       env={**os.environ, "KUBECACHEDIR": os.environ["KUBECONFIG"] + ".cache"})
        assert k8s_namespace.kubectl("get", "configmap", "only-here", "-n",
                                     k8s_namespace.name).returncode == 0


    def test_other_namespace_is_gone_and_unseen(tinykube_cluster, k8s_namespace):
        assert SEEN and SEEN[0] != k8s_namespace.name
        gone = tinykube_cluster.kubectl("get", "namespace", SEEN[0], check=False)
        assert "NotFound" in gone.stderr
        mine = k8s_namespace.kubectl("get", "configmaps", "-o", "name").stdout
        assert "only-here" not in mine


    @pytest.fixture
    def configmap(k8s_namespace):
        k8s_namespace.kubectl("create", "configmap", "probe", "--from-literal=k=v")
        return k8s_namespace.name


    def test_official_client(configmap):
        from kubernetes import client, config
        config.load_kube_config()
        assert config.list_kube_config_contexts()[1]["context"]["namespace"] == configmap
        cm = client.CoreV1Api().read_namespaced_config_map("probe", configmap)
        assert cm.data == {"k": "v"}


    def test_kubernetes_asyncio(configmap):
        from kubernetes_asyncio import client, config

        async def read():
            await config.load_kube_config()
            async with client.ApiClient() as api:
                return await client.CoreV1Api(api).read_namespaced_config_map("probe",
                                                                              configmap)
        assert asyncio.run(read()).data == {"k": "v"}


    def test_lightkube(configmap):
        from lightkube import Client
        from lightkube.resources.core_v1 import ConfigMap
        assert Client().get(ConfigMap, "probe").metadata.namespace == configmap


    @pytest.mark.parametrize("attempt", [1, 2])  # a second test: kr8s's cache is reset
    def test_kr8s(configmap, attempt):
        import kr8s
        [cm] = kr8s.get("configmaps", "probe")
        assert cm.namespace == configmap and cm.data == {"k": "v"}


    def test_dns_drill(tinykube_cluster, k8s_namespace):
        k8s_namespace.apply(WEB)
        host, port = tinykube_cluster.dns_address
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = [host], port
        name = f"web.{k8s_namespace.name}.svc.cluster.local"
        tinykube_cluster.wait_for(lambda: _resolves(resolver, name), timeout=10)
        tinykube_cluster.dns.inject(name, rcode="NXDOMAIN", for_seconds=3)
        with pytest.raises(dns.resolver.NXDOMAIN):
            resolver.resolve(name, "A")
        tinykube_cluster.wait_for(lambda: _resolves(resolver, name), timeout=10)


    def _resolves(resolver, name):
        try:
            return resolver.resolve(name, "A")
        except dns.resolver.NXDOMAIN:
            return None


    @pytest.mark.tinykube(nodes=2)
    def test_marker_picks_another_cluster(tinykube_cluster):
        nodes = tinykube_cluster.kubectl("get", "nodes", "-o", "name").stdout.split()
        assert nodes == ["node/node-1", "node/node-2"]
''')


@pytest.fixture
def inner_tmp(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR for the inner session: where the plugin makes its data directories."""
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return tmp


@pytest.mark.slow
def test_fixtures_in_a_user_suite_leave_nothing(pytester: pytest.Pytester,
                                                inner_tmp: Path) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider",
                                           "-v", timeout=300)
    result.assert_outcomes(passed=10)
    assert data_dirs(inner_tmp) == []
    assert tinykube_processes(inner_tmp) == []


def test_entry_point_loads_it_and_no_tinykube_disables_it(
        pytester: pytest.Pytester, inner_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the `pytest11` entry point, as an installed tinykube has it (a distribution
    with only that entry point is put on the path when this checkout is not installed so)."""
    if plugin_args():
        info = pytester.path / "site" / "tinykube_entry_point-0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinykube-entry-point\n"
                                       "Version: 0\n")
        (info / "entry_points.txt").write_text("[pytest11]\ntinykube = tinykube.pytest_plugin\n")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
            [str(info.parent), *filter(None, [os.environ.get("PYTHONPATH")])]))
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n",
                        test_uses="def test_uses(tinykube_cluster, k8s_namespace):\n"
                                  "    pass\n")
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fixtures",
                                          "test_plain.py")
    assert "tinykube_cluster" in plain.stdout.str() and "k8s_namespace" in plain.stdout.str()
    unused = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_plain.py")
    unused.assert_outcomes(passed=1)
    assert data_dirs(inner_tmp) == []  # loaded, unused: no cluster
    disabled = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:tinykube",
                                             "test_uses.py")
    disabled.assert_outcomes(errors=1)
    assert "fixture 'tinykube_cluster' not found" in disabled.stdout.str()
