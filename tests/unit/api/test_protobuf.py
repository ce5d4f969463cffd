"""Decoding Kubernetes protobuf bodies: the wire format, Kubernetes' JSON mappings, bad input.

The bodies are built here with a minimal encoder written from the protobuf wire format; the
end-to-end check against bodies the real kubectls send is
tests/integration/test_kubectl_protobuf.py.
"""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tinykube.api import protobuf

ROOT = Path(__file__).resolve().parents[3]


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def num(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def raw(number: int, data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return tag(number, 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, body: bytes) -> bytes:
    type_meta = raw(1, api_version) + raw(2, kind)
    return protobuf.MAGIC + raw(1, type_meta) + raw(2, body)


def meta(*fields: bytes) -> bytes:
    return raw(1, b"".join(fields))


def time_(seconds: int, nanos: int = 0) -> bytes:
    return num(1, seconds) + (num(2, nanos) if nanos else b"")


# ObjectMeta: 1 name, 2 generateName, 3 namespace, 7 generation, 8 creationTimestamp, 11 labels.
# Each case: (api version, kind, message body, expected object without apiVersion/kind).
CASES: dict[str, tuple[str, str, bytes, dict[str, Any]]] = {
    "namespace as kubectl sends it: empty strings, zero generation and time left out": (
        "v1", "Namespace",
        meta(raw(1, "demo"), raw(2, ""), raw(3, ""), num(7, 0), raw(8, b""))
        + raw(2, b"") + raw(3, raw(1, "")),
        {"metadata": {"name": "demo"}, "spec": {}, "status": {}}),
    "labels map, finalizers list": (
        "v1", "Namespace",
        meta(raw(1, "x"), raw(11, raw(1, "app") + raw(2, "web")), raw(11, raw(1, "tier")),
             raw(14, "a"), raw(14, "b")),
        {"metadata": {"name": "x", "labels": {"app": "web", "tier": ""},
                      "finalizers": ["a", "b"]}}),
    "secret data is base64, configmap binaryData too": (
        "v1", "Secret",
        meta(raw(1, "s")) + raw(2, raw(1, "k") + raw(2, b"\x00\xff")) + raw(3, "Opaque"),
        {"metadata": {"name": "s"}, "data": {"k": "AP8="}, "type": "Opaque"}),
    "explicit zero replicas is kept (a Go pointer), zero minReadySeconds is not": (
        "apps/v1", "Deployment", meta(raw(1, "d")) + raw(2, num(1, 0) + num(5, 0)),
        {"metadata": {"name": "d"}, "spec": {"replicas": 0}}),
    "a Job's explicit zero backoffLimit and false suspend are kept (Go pointers)": (
        "batch/v1", "Job", meta(raw(1, "j")) + raw(2, num(7, 0) + num(10, 0)),
        {"metadata": {"name": "j"}, "spec": {"backoffLimit": 0, "suspend": False}}),
    "negative int64 and sign-extended int32": (
        "v1", "Pod", meta(raw(1, "p"), num(10, -5))
        + raw(2, num(4, -30) + raw(2, raw(1, "c") + raw(6, num(3, -1)))),
        {"metadata": {"name": "p", "deletionGracePeriodSeconds": -5},
         "spec": {"terminationGracePeriodSeconds": -30,
                  "containers": [{"name": "c", "ports": [{"containerPort": -1}]}]}}),
    "times: RFC 3339, MicroTime with microseconds": (
        "coordination.k8s.io/v1", "Lease",
        meta(raw(1, "l"), raw(8, time_(1_700_000_000)))
        + raw(2, raw(4, time_(1_700_000_000, 123_456_789))),
        {"metadata": {"name": "l", "creationTimestamp": "2023-11-14T22:13:20Z"},
         "spec": {"renewTime": "2023-11-14T22:13:20.123456Z"}}),
    "IntOrString as int and as string; Quantity as its string": (
        "v1", "Service",
        meta(raw(1, "s")) + raw(2, raw(1, num(3, 80) + raw(4, num(1, 0) + num(2, 8080)))
                                 + raw(1, num(3, 81) + raw(4, num(1, 1) + raw(3, "http")))),
        {"metadata": {"name": "s"},
         "spec": {"ports": [{"port": 80, "targetPort": 8080},
                            {"port": 81, "targetPort": "http"}]}}),
    "resource list is a map of quantities": (
        "v1", "PersistentVolumeClaim",
        meta(raw(1, "c")) + raw(2, raw(2, raw(2, raw(1, "storage") + raw(2, raw(1, "1Gi"))))),
        {"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}),
    "RawExtension carries JSON": (
        "apps/v1", "ControllerRevision", meta(raw(1, "r")) + raw(2, raw(1, b'{"spec":{"a":1}}'))
        + num(3, 2),
        {"metadata": {"name": "r"}, "data": {"spec": {"a": 1}}, "revision": 2}),
    "packed repeated numbers": (
        "v1", "Pod", meta(raw(1, "p")) + raw(2, raw(14, raw(4, b"\x01\x02\x03"))),
        {"metadata": {"name": "p"},
         "spec": {"securityContext": {"supplementalGroups": [1, 2, 3]}}}),
    "unknown field numbers are skipped": (
        "v1", "ConfigMap", meta(raw(1, "c"), raw(99, "later")) + num(98, 7),
        {"metadata": {"name": "c"}}),
    "inline ProbeHandler: the handler's fields sit on the probe": (
        "v1", "Pod", meta(raw(1, "p")) + raw(2, raw(2, raw(1, "c") + raw(11, (
            raw(1, raw(1, raw(1, "true"))) + num(4, 5))))),
        {"metadata": {"name": "p"},
         "spec": {"containers": [{"name": "c", "readinessProbe": {
             "exec": {"command": ["true"]}, "periodSeconds": 5}}]}}),
    "inline VolumeSource: hostPath on the volume, not replaced by emptyDir": (
        "v1", "Pod", meta(raw(1, "p")) + raw(2, raw(1, raw(1, "root") + raw(2, raw(1, (
            raw(1, "/") + raw(2, "")))))),
        {"metadata": {"name": "p"},
         "spec": {"volumes": [{"name": "root", "hostPath": {"path": "/", "type": ""}}]}}),
    "inline EphemeralContainerCommon beside targetContainerName": (
        "v1", "Pod", meta(raw(1, "p")) + raw(2, raw(34, raw(1, raw(1, "dbg") + raw(2, "busybox"))
                                               + raw(2, "app"))),
        {"metadata": {"name": "p"},
         "spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox",
                                           "targetContainerName": "app"}]}}),
    "inline LocalObjectReference: configMapKeyRef keeps its name": (
        "v1", "Pod", meta(raw(1, "p")) + raw(2, raw(2, raw(1, "c") + raw(7, raw(1, "LEVEL") + raw(
            3, raw(3, raw(1, raw(1, "settings")) + raw(2, "level") + num(3, 0)))))),
        {"metadata": {"name": "p"},
         "spec": {"containers": [{"name": "c", "env": [{"name": "LEVEL", "valueFrom": {
             "configMapKeyRef": {"name": "settings", "key": "level", "optional": False}}}]}]}}),
    "an empty grpc service is a value (a pointer in Go)": (
        "v1", "Pod", meta(raw(1, "p")) + raw(2, raw(2, raw(1, "c") + raw(11, raw(1, (
            raw(4, num(1, 9000) + raw(2, ""))))))),
        {"metadata": {"name": "p"},
         "spec": {"containers": [{"name": "c", "readinessProbe": {
             "grpc": {"port": 9000, "service": ""}}}]}}),
    "DeleteOptions under any group version": (
        "apps/v1", "DeleteOptions", num(1, 0) + raw(4, "Foreground"),
        {"gracePeriodSeconds": 0, "propagationPolicy": "Foreground"}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_decode(case: str) -> None:
    api_version, kind, body, expected = CASES[case]
    assert protobuf.decode(envelope(api_version, kind, body)) == {
        "apiVersion": api_version, "kind": kind, **expected}


BAD: dict[str, tuple[bytes, str]] = {
    "no magic": (b'{"kind":"Pod"}', "does not start with the Kubernetes protobuf prefix"),
    "empty": (b"", "does not start with the Kubernetes protobuf prefix"),
    "length past the end": (protobuf.MAGIC + b"\n\x20\n\x02v1", "runs past the end"),
    "truncated varint": (protobuf.MAGIC + b"\x08\xff", "truncated or overlong varint"),
    "overlong varint": (protobuf.MAGIC + b"\x08" + b"\xff" * 11, "truncated or overlong varint"),
    "group wire type": (protobuf.MAGIC + b"\x0b", "unsupported wire type 3"),
    "field number zero": (protobuf.MAGIC + b"\x00\x00", "field number 0"),
    "unknown kind": (envelope("example.com/v1", "Widget", b""), "no protobuf schema for"),
    "string not UTF-8": (envelope("v1", "ConfigMap", meta(raw(1, b"\xff\xfe"))), "not UTF-8"),
    "number where a message belongs": (envelope("v1", "ConfigMap", num(1, 5)),
                                       "expected a length-delimited field"),
    "embedded JSON": (protobuf.MAGIC + raw(1, raw(1, "v1") + raw(2, "Pod")) + raw(2, b"{}")
                      + raw(4, "application/json"), "unsupported embedded content type"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_malformed_bodies_raise_protobuf_error(case: str) -> None:
    body, message = BAD[case]
    with pytest.raises(protobuf.ProtobufError, match=message):
        protobuf.decode(body)


def test_random_bodies_decode_or_raise_protobuf_error() -> None:
    """Damaged bodies either decode to some object or raise ProtobufError, nothing else."""
    rng = random.Random(1234)
    outcomes = {"decoded": 0, "refused": 0}
    valid = envelope("apps/v1", "Deployment", meta(raw(1, "d"), raw(11, raw(1, "a") + raw(2, "b")))
                     + raw(2, num(1, 3)))
    for attempt in range(3000):
        if attempt % 3:  # a valid body with a few bytes changed
            body = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                body[rng.randrange(len(protobuf.MAGIC), len(body))] = rng.randrange(256)
        else:  # noise after the prefix
            body = bytearray(protobuf.MAGIC + rng.randbytes(rng.randint(0, 64)))
        try:
            decoded = protobuf.decode(bytes(body))
        except protobuf.ProtobufError:
            outcomes["refused"] += 1
        else:
            assert isinstance(decoded, dict) and "kind" in decoded
            outcomes["decoded"] += 1
    assert outcomes["decoded"] > 20 and outcomes["refused"] > 20, outcomes


def test_every_pointer_field_listed_exists_in_the_schema() -> None:
    """A misspelt entry in ZERO_IS_A_VALUE would silently drop a meaningful zero."""
    names: dict[str, set[str]] = {}
    for message, fields in protobuf._schema()["messages"].items():
        names.setdefault(message.rpartition(".")[2], set()).update(f[0] for f in fields.values())
    assert {(m, f) for m, f in protobuf.ZERO_IS_A_VALUE if f not in names.get(m, ())} == set()


def test_every_served_kind_has_a_schema() -> None:
    from tinykube.api import resources
    missing = [f"{r.api_version}/{r.kind}" for r in resources.ALL  # metrics: read-only
               if not r.provider and protobuf.message_for(r.api_version, r.kind) is None]
    # kubectl carries no descriptor for kube-aggregator's APIService nor for the
    # CustomResourceDefinition (gen_protobuf_schema.py)
    assert sorted(missing) == ["apiextensions.k8s.io/v1/CustomResourceDefinition",
                               "apiregistration.k8s.io/v1/APIService"]


@pytest.mark.skipif(not Path("/usr/bin/kubectl").exists(), reason="needs the v1.32 kubectl")
def test_committed_schema_matches_the_kubectl_binary() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protobuf_schema.py"),
                             "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# Every Go `json:",inline"` embedding among the messages tinykube decodes, checked against the
# Go types (k8s.io/api/core/v1/types.go). The generator derives them; this golden list catches
# a regression in that derivation (and a new embedding shows up here as a diff to review).
INLINE = {
    ("ConfigMapEnvSource", "localObjectReference"),
    ("ConfigMapKeySelector", "localObjectReference"),
    ("ConfigMapProjection", "localObjectReference"),
    ("ConfigMapVolumeSource", "localObjectReference"),
    ("EphemeralContainer", "ephemeralContainerCommon"),
    ("IngressRule", "ingressRuleValue"),
    ("NamedRuleWithOperations", "ruleWithOperations"),  # admissionregistration: an embedding
    ("RuleWithOperations", "rule"),                      # within an embedding
    ("PersistentVolumeSpec", "persistentVolumeSource"),
    ("Probe", "handler"),
    ("SecretEnvSource", "localObjectReference"),
    ("SecretKeySelector", "localObjectReference"),
    ("SecretProjection", "localObjectReference"),
    ("Volume", "volumeSource"),
}


def test_schema_marks_every_inline_embedding() -> None:
    found = {(message.rpartition(".")[2], field[0])
             for message, fields in protobuf._schema()["messages"].items()
             for field in fields.values() if field[2] == "inline"}
    assert found == INLINE


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_protobuf_schema", ROOT / "scripts" / "gen_protobuf_schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _msg(*fields: tuple[str, int, str]) -> dict[str, Any]:
    """A parsed descriptor: (name, number, message type or "" for a string field)."""
    return {"map_entry": False, "fields": [
        {"name": name, "number": number, "repeated": False, "type": 11 if kind else 9,
         "type_name": kind} for name, number, kind in fields]}


# Synthetic descriptors and JSON types for the generator's inline detection: Outer pairs with
# the JSON type "Outer", whose properties decide which of its message fields are inline.
_EVERY = {"Outer": _msg(("name", 1, ""), ("source", 2, "Source"), ("spec", 3, "Source")),
          "Source": _msg(("path", 1, ""), ("type", 2, ""))}
INLINE_CASES: dict[str, tuple[dict[str, str], set[tuple[int, str]], dict[str, bool] | str]] = {
    "absent name, sub-fields on the parent: inline": (
        {"name": "string", "path": "string", "type": "string", "spec": "Source"}, set(),
        {"source": True, "spec": False}),
    "named property: nested even when its fields also appear": (
        {"name": "string", "source": "Source", "spec": "Source", "path": "string",
         "type": "string"}, set(), {"source": False, "spec": False}),
    "neither a property nor its fields on the parent: the generator stops": (
        {"name": "string", "spec": "Source"}, set(), "is neither a property of Outer"),
    "the binary's struct tags disagree with the JSON schema: the generator stops": (
        {"name": "string", "source": "Source", "spec": "Source"}, {(2, "source")},
        "struct tags say inline"),
}


@pytest.mark.parametrize("case", INLINE_CASES, ids=list(INLINE_CASES))
def test_generator_finds_inline_fields(case: str) -> None:
    properties, tags, expected = INLINE_CASES[case]
    generator = _generator()
    types = {"Outer": properties, "Source": {"path": "string", "type": "string"}}
    inline = generator.Inline(_EVERY, {"types": types}, tags)

    def verdicts() -> dict[str, bool]:
        inline.walk({"Outer": "Outer"})
        return {f["name"]: inline.is_inline("Outer", f)
                for f in _EVERY["Outer"]["fields"] if f["type_name"]}
    if isinstance(expected, str):
        with pytest.raises(SystemExit, match=expected):
            verdicts()
    else:
        assert verdicts() == expected


def test_generator_falls_back_to_struct_tags_without_a_json_type() -> None:
    inline = _generator().Inline(_EVERY, {"types": {}}, {(2, "source")})
    inline.walk({"Outer": None})
    assert [inline.is_inline("Outer", f) for f in _EVERY["Outer"]["fields"]] == [
        False, True, False]


def test_generator_reads_inline_struct_tags() -> None:
    binary = (b'\x00json:",inline" protobuf:"bytes,2,opt,name=volumeSource"\x00'
              b'json:"name" protobuf:"bytes,1,opt,name=name"\x00'
              b'json:",inline" protobuf:"bytes,1,req"\x00')
    assert _generator().inline_tags(binary) == {(2, "volumeSource")}
