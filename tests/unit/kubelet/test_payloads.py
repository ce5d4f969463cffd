"""The files of configMap, secret, downwardAPI and projected volumes (pure tables)."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.kubelet import payloads
from tinykube.kubelet.payloads import File, VolumeError

CONFIGMAPS = {("team", "cfg"): {"data": {"a.conf": "A", "b": "B"},
                                "binaryData": {"bin": "AAE="}}}
SECRETS = {("team", "sec"): {"data": {"password": "c2VjcmV0"}}}
POD = {"metadata": {"name": "web-0", "namespace": "team", "uid": "u1",
                    "labels": {"app": "web", "tier": 'fr"ont'},
                    "annotations": {"note": "line1\nline2"}},
       "spec": {"nodeName": "n1", "containers": [
           {"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"},
                                       "requests": {"memory": "32Mi"}}},
           {"name": "bare"}]}}


def sources(token: str | None = "tok") -> payloads.Sources:
    return payloads.Sources(lambda ns, n: CONFIGMAPS.get((ns, n)),
                            lambda ns, n: SECRETS.get((ns, n)), lambda _p, _s: token)


def content(volume: dict[str, Any], token: str | None = "tok") -> payloads.Payload | None:
    return payloads.content(volume, POD, sources(token))


@pytest.mark.parametrize(("volume", "expected"), [
    pytest.param({"configMap": {"name": "cfg"}},
                 {"a.conf": File(b"A"), "b": File(b"B"), "bin": File(b"\x00\x01")},
                 id="configmap-every-key-with-binary"),
    pytest.param({"configMap": {"name": "cfg", "defaultMode": 0o400,
                                "items": [{"key": "a.conf", "path": "etc/app.conf"},
                                          {"key": "b", "path": "b", "mode": 0o600}]}},
                 {"etc/app.conf": File(b"A", 0o400), "b": File(b"B", 0o600)},
                 id="configmap-items-and-modes"),
    pytest.param({"configMap": {"name": "absent", "optional": True}}, {},
                 id="configmap-optional-missing-is-empty"),
    pytest.param({"configMap": {"name": "cfg", "optional": True,
                                "items": [{"key": "nope", "path": "x"}]}}, {},
                 id="configmap-optional-missing-key-skipped"),
    pytest.param({"secret": {"secretName": "sec"}}, {"password": File(b"secret")},
                 id="secret"),
    pytest.param({"secret": {"secretName": "sec", "defaultMode": 0o440}},
                 {"password": File(b"secret", 0o440)}, id="secret-default-mode"),
    pytest.param({"downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "one", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "node", "fieldRef": {"fieldPath": "spec.nodeName"}}]}},
        {"labels": File(b'app="web"\ntier="fr\\"ont"'),
         "annotations": File(b'note="line1\\nline2"'), "one": File(b"web"),
         "node": File(b"n1")}, id="downward-fields"),
    pytest.param({"downwardAPI": {"items": [
        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu",
                                             "divisor": "1m"}},
        {"path": "cpu-cores", "resourceFieldRef": {"containerName": "c",
                                                   "resource": "limits.cpu"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                             "divisor": "1Mi"}},
        {"path": "req", "resourceFieldRef": {"containerName": "c",
                                             "resource": "requests.memory"}},
        {"path": "node-mem", "resourceFieldRef": {"containerName": "bare",
                                                  "resource": "limits.memory",
                                                  "divisor": "1Gi"}},
        {"path": "no-req", "resourceFieldRef": {"containerName": "bare",
                                                "resource": "requests.cpu"}}]}},
        {"cpu": File(b"500"), "cpu-cores": File(b"1"), "mem": File(b"64"),
         "req": File(str(32 << 20).encode()), "node-mem": File(b"24"), "no-req": File(b"0")},
        id="downward-resources-rounded-up-node-allocatable"),
    pytest.param({"projected": {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "b"}]}},
        {"secret": {"name": "sec"}},
        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {
            "fieldPath": "metadata.namespace"}}]}},
        {"serviceAccountToken": {"path": "token"}}]}},
        {"b": File(b"B", 0o440), "password": File(b"secret", 0o440),
         "ns": File(b"team", 0o440), "token": File(b"tok", 0o440)}, id="projected"),
    pytest.param({"emptyDir": {}}, None, id="not-a-content-volume"),
])
def test_content(volume: dict[str, Any], expected: payloads.Payload | None) -> None:
    assert content(volume) == expected


@pytest.mark.parametrize(("volume", "message"), [
    pytest.param({"configMap": {"name": "absent"}}, 'configmap "absent" not found',
                 id="configmap-missing"),
    pytest.param({"configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}},
                 "configmap references non-existent config key: nope", id="configmap-key"),
    pytest.param({"secret": {"secretName": "absent"}}, 'secret "absent" not found',
                 id="secret-missing"),
    pytest.param({"secret": {"secretName": "sec", "items": [{"key": "user", "path": "u"}]}},
                 "references non-existent secret key: user", id="secret-key"),
    pytest.param({"projected": {"sources": [{"configMap": {"name": "absent"}}]}},
                 'configmap "absent" not found', id="projected-configmap-missing"),
    pytest.param({"downwardAPI": {"items": [{"path": "x", "resourceFieldRef": {
        "containerName": "ghost", "resource": "limits.cpu"}}]}}, "container ghost not found",
        id="downward-unknown-container"),
])
def test_errors(volume: dict[str, Any], message: str) -> None:
    with pytest.raises(VolumeError) as caught:
        content(volume)
    assert str(caught.value) == message


def test_projected_token_missing() -> None:
    with pytest.raises(VolumeError, match="no service account token"):
        content({"projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
                token=None)
