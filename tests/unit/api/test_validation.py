"""Validation: each rule with the exact message kube-apiserver gives, and valid objects pass.

Cases start from a defaulted, valid object (`_valid(kind)`), change one field with `_with`, and
list the full `str(FieldError)` lines expected, in order.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinykube.api import defaults, validation

SEED = Path(__file__).resolve().parents[2] / "testdata" / "web.yaml"  # the seed manifest
DELETE = object()  # `_with` value meaning "remove this field"

DNS1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS1035_LABEL = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
MIB = 1024 * 1024
TOO_LONG_63 = "must be no more than 63 characters"
IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
STS_FORBIDDEN = (
    "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
    "are forbidden"
)


def _seed() -> tuple[dict[str, Any], dict[str, Any]]:
    """The seed Service and StatefulSet, the latter as apps/v1 with a selector."""
    svc, sts = yaml.safe_load_all(SEED.read_text())
    svc["metadata"]["namespace"] = sts["metadata"]["namespace"] = "default"
    sts["apiVersion"] = "apps/v1"
    sts["spec"]["selector"] = {"matchLabels": {"app": "nginx"}}
    return svc, sts


def _pod_spec() -> dict[str, Any]:
    return {
        "containers": [{
            "name": "app", "image": "nginx:1.27",
            "ports": [{"name": "http", "containerPort": 80}],
            "env": [{"name": "MODE", "value": "prod"}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "readinessProbe": {"httpGet": {"port": 80}},
        }],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }


def _raw(kind: str) -> dict[str, Any]:
    meta = {"name": "web", "namespace": "default", "labels": {"app": "web"}}
    svc, sts = _seed()
    workload = {"metadata": meta, "spec": {"selector": {"matchLabels": {"app": "web"}},
                                           "template": {"metadata": {"labels": {"app": "web"}},
                                                        "spec": _pod_spec()}}}
    objects: dict[str, dict[str, Any]] = {
        "Service": {
            "metadata": meta,
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
        },
        "SeedService": svc,
        "SeedStatefulSet": sts,
        "Pod": {"metadata": meta, "spec": _pod_spec()},
        "StatefulSet": {**workload, "spec": {**workload["spec"], "serviceName": "web"}},
        "Deployment": workload,
        "ReplicaSet": workload,
        "Namespace": {"metadata": {"name": "dev"}},
        "ConfigMap": {"metadata": meta, "data": {"app.conf": "x", "KEY_1": "y"}},
        "Secret": {"metadata": meta, "data": {"tls.crt": "eA=="}},
        "EndpointSlice": {
            "metadata": meta, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.0.5"], "hostname": "web-0"}],
            "ports": [{"name": "http", "port": 80}],
        },
        "Endpoints": {
            "metadata": meta,
            "subsets": [{"addresses": [{"ip": "10.244.0.5", "hostname": "web-0"}],
                         "ports": [{"name": "http", "port": 80}]}],
        },
        "Node": {"metadata": {"name": "node-1"}},
        "Lease": {"metadata": {**meta, "name": "node-1"}, "spec": {"holderIdentity": "node-1"}},
        "Event": {"metadata": {**meta, "name": "web.17c9"}, "reason": "Started"},
    }
    return copy.deepcopy(objects[kind])


def _kind(name: str) -> str:
    return name.removeprefix("Seed")


def _valid(name: str) -> dict[str, Any]:
    return defaults.apply_defaults(_kind(name), _raw(name))


def _with(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `obj` with `a__b__0__c=value` set (DELETE removes the field)."""
    result = copy.deepcopy(obj)
    for path, value in changes.items():
        parts: list[Any] = [int(p) if p.isdigit() else p for p in path.split("__")]
        node: Any = result
        for part in parts[:-1]:
            node = node[part]
        if value is DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return result


def _messages(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [str(e) for e in validation.validate(kind, obj, old)]


@pytest.mark.parametrize("name", [
    "Service", "SeedService", "SeedStatefulSet", "Pod", "StatefulSet", "Deployment",
    "ReplicaSet", "Namespace", "ConfigMap", "Secret", "EndpointSlice", "Endpoints", "Node",
    "Lease", "Event",
])
def test_valid_objects_have_no_errors(name: str) -> None:
    obj = _valid(name)
    assert _messages(_kind(name), obj) == []
    assert _messages(_kind(name), obj, old=obj) == []


# --- metadata ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "changes", "expected"), [
    pytest.param("Pod", {"metadata__name": DELETE},
                 ["metadata.name: Required value: name or generateName is required"],
                 id="name-required"),
    pytest.param("Pod", {"metadata__name": "Web_1"},
                 [f'metadata.name: Invalid value: "Web_1": {DNS1123_SUBDOMAIN}'],
                 id="subdomain-name"),
    pytest.param("Service", {"metadata__name": "1web"},
                 [f'metadata.name: Invalid value: "1web": {DNS1035_LABEL}'], id="service-dns1035"),
    pytest.param("Namespace", {"metadata__name": "a.b"},
                 ['metadata.name: Invalid value: "a.b": must not contain dots'],
                 id="namespace-label-dots"),
    pytest.param("Namespace", {"metadata__name": "x" * 64},
                 [f'metadata.name: Invalid value: "{"x" * 64}": {TOO_LONG_63}'],
                 id="namespace-label-too-long"),
    pytest.param("Pod", {"metadata__namespace": DELETE}, ["metadata.namespace: Required value"],
                 id="namespace-required"),
    pytest.param("Pod", {"metadata__namespace": "Dev"},
                 [f'metadata.namespace: Invalid value: "Dev": {DNS1123_LABEL}'],
                 id="namespace-invalid"),
    pytest.param("Node", {"metadata__namespace": "default"},
                 ["metadata.namespace: Forbidden: not allowed on this type"],
                 id="cluster-scoped-namespace"),
    pytest.param("Pod", {"metadata__labels": {"bad key": "v"}},
                 [f'metadata.labels: Invalid value: "bad key": {QNAME_NAME_PART}'],
                 id="label-key"),
    pytest.param("Pod", {"metadata__labels": {"/a": "v"}},
                 ['metadata.labels: Invalid value: "/a": prefix part must be non-empty'],
                 id="label-key-empty-prefix"),
    pytest.param("Pod", {"metadata__labels": {"a": "bad value"}},
                 [f'metadata.labels: Invalid value: "bad value": {LABEL_VALUE}'],
                 id="label-value"),
    pytest.param("Pod", {"metadata__labels": {"a": "v" * 64}},
                 [f'metadata.labels: Invalid value: "{"v" * 64}": {TOO_LONG_63}'],
                 id="label-value-too-long"),
    pytest.param("Pod", {"metadata__annotations": {"big": "x" * 262144}},
                 ["metadata.annotations: Too long: may not be more than 262144 bytes"],
                 id="annotations-size"),
])
def test_metadata(kind: str, changes: dict[str, Any], expected: list[str]) -> None:
    assert _messages(kind, _with(_valid(kind), **changes)) == expected


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"metadata__name": "other"},
                 ['metadata.name: Invalid value: "other": field is immutable'], id="name"),
    pytest.param({"metadata__namespace": "dev"},
                 ['metadata.namespace: Invalid value: "dev": field is immutable'], id="namespace"),
    pytest.param({"metadata__uid": "u2"},
                 ['metadata.uid: Invalid value: "u2": field is immutable'], id="uid"),
    pytest.param({"metadata__uid": DELETE}, [], id="uid-omitted-is-not-a-change"),
    pytest.param({"metadata__labels": {"app": "other"}}, [], id="labels-mutable"),
])
def test_metadata_update(changes: dict[str, Any], expected: list[str]) -> None:
    old = _with(_valid("ConfigMap"), metadata__uid="u1")
    assert _messages("ConfigMap", _with(old, **changes), old) == expected


# --- Service -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"spec__ports": []}, ["spec.ports: Required value"], id="ports-required"),
    pytest.param({"spec__ports__0__port": 0},
                 ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
                 id="port-zero"),
    pytest.param({"spec__ports__0__port": 70000, "spec__ports__0__targetPort": 80},
                 ["spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, "
                  "inclusive"], id="port-too-big"),
    pytest.param({"spec__ports__0__protocol": "HTTP"},
                 ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", '
                  '"TCP", "UDP"'], id="protocol"),
    pytest.param({"spec__ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                                  {"port": 81, "protocol": "TCP", "targetPort": 81}]},
                 ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"],
                 id="names-required-when-several"),
    pytest.param({"spec__ports": [{"name": "a", "port": 80, "protocol": "TCP", "targetPort": 80},
                                  {"name": "a", "port": 81, "protocol": "TCP", "targetPort": 81}]},
                 ['spec.ports[1].name: Duplicate value: "a"'], id="duplicate-name"),
    pytest.param({"spec__ports__0__name": "Http"},
                 [f'spec.ports[0].name: Invalid value: "Http": {DNS1123_LABEL}'],
                 id="port-name-label"),
    pytest.param({"spec__ports": [{"name": "a", "port": 53, "protocol": "UDP", "targetPort": 53},
                                  {"name": "b", "port": 53, "protocol": "UDP",
                                   "targetPort": 5353}]},
                 ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"UDP", '
                  'AppProtocol:(*string)(nil), Port:53, TargetPort:intstr.IntOrString{Type:0, '
                  'IntVal:0, StrVal:""}, NodePort:0}'], id="duplicate-port-protocol"),
    pytest.param({"spec__ports__0__targetPort": 70000},
                 ["spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, "
                  "inclusive"], id="targetport-number"),
    pytest.param({"spec__ports__0__targetPort": "a--b"},
                 ['spec.ports[0].targetPort: Invalid value: "a--b": must not contain consecutive '
                  'hyphens'], id="targetport-name"),
    pytest.param({"spec__ports__0__targetPort": "http-metrics-port"},
                 ['spec.ports[0].targetPort: Invalid value: "http-metrics-port": must be no more '
                  'than 15 characters'], id="targetport-name-long"),
    pytest.param({"spec__ports__0__nodePort": 30080},
                 ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
                 id="nodeport-on-clusterip"),
    pytest.param({"spec__type": "Foo"},
                 ['spec.type: Unsupported value: "Foo": supported values: "ClusterIP", '
                  '"ExternalName", "LoadBalancer", "NodePort"'], id="type"),
    pytest.param({"spec__clusterIP": "10.0.0.300"},
                 [f'spec.clusterIPs[0]: Invalid value: "10.0.0.300": {IP}'], id="cluster-ip"),
    pytest.param({"spec__clusterIP": "None", "spec__ports": []}, [], id="headless-no-ports"),
    pytest.param({"spec__clusterIP": "None", "spec__type": "NodePort",
                  "spec__externalTrafficPolicy": "Cluster"},
                 ['spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for '
                  'NodePort services'], id="none-for-nodeport"),
    pytest.param({"spec__clusterIP": "10.0.0.1", "spec__clusterIPs": ["10.0.0.2"]},
                 ['spec.clusterIPs: Invalid value: []string{"10.0.0.2"}: first value must match '
                  '`clusterIP`'], id="cluster-ips-mismatch"),
    pytest.param({"spec__sessionAffinity": "Sticky"},
                 ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: '
                  '"ClientIP", "None"'], id="session-affinity"),
    pytest.param({"spec__sessionAffinity": "ClientIP",
                  "spec__sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
                 ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be "
                  "greater than 0 and less than 86400"], id="affinity-timeout"),
    pytest.param({"spec__externalIPs": ["1.2.3"]},
                 [f'spec.externalIPs[0]: Invalid value: "1.2.3": {IP}',
                  "spec.externalTrafficPolicy: Required value"], id="external-ip"),
    pytest.param({"spec__externalIPs": ["169.254.1.1"], "spec__externalTrafficPolicy": "Cluster"},
                 ['spec.externalIPs[0]: Invalid value: "169.254.1.1": may not be in the '
                  'link-local range (169.254.0.0/16, fe80::/10)'], id="external-ip-link-local"),
    pytest.param({"spec__externalIPs": ["0.0.0.0"], "spec__externalTrafficPolicy": "Cluster"},
                 ['spec.externalIPs[0]: Invalid value: "0.0.0.0": may not be unspecified '
                  '(0.0.0.0)'], id="external-ip-unspecified"),
    # tinykube's host network mode uses 127.x addresses, which upstream would refuse.
    pytest.param({"spec__externalIPs": ["127.96.5.5"], "spec__externalTrafficPolicy": "Cluster"},
                 [], id="external-ip-loopback-allowed"),
    pytest.param({"spec__ipFamilies": ["IPv5"]},
                 ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", '
                  '"IPv6"'], id="ip-family"),
    pytest.param({"spec__ipFamilyPolicy": "Both"},
                 ['spec.ipFamilyPolicy: Unsupported value: "Both": supported values: '
                  '"PreferDualStack", "RequireDualStack", "SingleStack"'], id="ip-family-policy"),
    pytest.param({"spec__internalTrafficPolicy": "Node"},
                 ['spec.internalTrafficPolicy: Unsupported value: "Node": supported values: '
                  '"Cluster", "Local"'], id="internal-traffic-policy"),
    pytest.param({"spec__externalTrafficPolicy": "Local"},
                 ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
                  'externally-accessible services'], id="etp-on-clusterip"),
    pytest.param({"spec__selector": {"app": "a b"}},
                 [f'spec.selector: Invalid value: "a b": {LABEL_VALUE}'], id="selector-value"),
])
def test_service(changes: dict[str, Any], expected: list[str]) -> None:
    assert _messages("Service", _with(_valid("Service"), **changes)) == expected


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"type": "ExternalName", "externalName": "db.example.com."}, [],
                 id="valid-with-trailing-dot"),
    pytest.param({"type": "ExternalName"}, ["spec.externalName: Required value"],
                 id="name-required"),
    pytest.param({"type": "ExternalName", "externalName": "Bad_Host"},
                 [f'spec.externalName: Invalid value: "Bad_Host": {DNS1123_SUBDOMAIN}'],
                 id="name-invalid"),
    pytest.param({"type": "ExternalName", "externalName": "db.example.com",
                  "clusterIP": "10.0.0.1"},
                 ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"],
                 id="cluster-ip-forbidden"),
])
def test_external_name_service(spec: dict[str, Any], expected: list[str]) -> None:
    svc = defaults.apply_defaults("Service", {"metadata": {"name": "db", "namespace": "default"},
                                              "spec": spec})
    assert _messages("Service", svc) == expected


def _allocated(cluster_ip: str, **spec: Any) -> dict[str, Any]:
    svc = _valid("Service")
    svc["spec"].update(clusterIP=cluster_ip, clusterIPs=[cluster_ip], **spec)
    return svc


@pytest.mark.parametrize(("old", "new", "expected"), [
    pytest.param(_allocated("10.96.0.10"), _allocated("10.96.0.10", sessionAffinity="None"), [],
                 id="unchanged"),
    pytest.param(_allocated("10.96.0.10"), _allocated("10.96.0.11"),
                 ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change '
                  'once set'], id="changed"),
    pytest.param(_allocated("10.96.0.10"), _allocated("None"),
                 ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once '
                  'set'], id="to-headless"),
    pytest.param(_allocated("None"), _allocated("None"), [], id="headless-unchanged"),
    pytest.param(_allocated("10.96.0.10"),
                 _with(_allocated("10.96.0.10"), spec__clusterIP=DELETE, spec__clusterIPs=DELETE),
                 ["spec.clusterIPs[0]: Invalid value: []string{}: primary clusterIP can not be "
                  "unset"], id="unset"),
    pytest.param(_allocated("10.96.0.10"),
                 defaults.apply_defaults("Service", {
                     "metadata": {"name": "web", "namespace": "default",
                                  "labels": {"app": "web"}},
                     "spec": {"type": "ExternalName", "externalName": "example.com"}}),
                 [], id="to-external-name"),
])
def test_service_update(old: dict[str, Any], new: dict[str, Any], expected: list[str]) -> None:
    assert _messages("Service", new, old) == expected


# --- Pod spec (pods and templates) ---------------------------------------------------------------

C0 = "spec.containers[0]"


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"spec__containers": []}, ["spec.containers: Required value"],
                 id="containers-required"),
    pytest.param({"spec__containers__0__name": "App"},
                 [f'{C0}.name: Invalid value: "App": {DNS1123_LABEL}'], id="container-name"),
    pytest.param({"spec__containers__0__name": DELETE}, [f"{C0}.name: Required value"],
                 id="container-name-required"),
    pytest.param({"spec__containers__0__image": DELETE}, [f"{C0}.image: Required value"],
                 id="image-required"),
    pytest.param({"spec__containers__0__ports__0__containerPort": 70000},
                 [f"{C0}.ports[0].containerPort: Invalid value: 70000: must be between 1 and "
                  "65535, inclusive"], id="container-port"),
    pytest.param({"spec__containers__0__ports__0__containerPort": 0},
                 [f"{C0}.ports[0].containerPort: Required value"], id="container-port-zero"),
    pytest.param({"spec__containers__0__ports__0__protocol": "ICMP"},
                 [f'{C0}.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", '
                  '"TCP", "UDP"'], id="container-port-protocol"),
    pytest.param({"spec__containers__0__ports__0__name": "123"},
                 [f'{C0}.ports[0].name: Invalid value: "123": must contain at least one letter '
                  '(a-z)'], id="container-port-name"),
    pytest.param({"spec__containers__0__ports": [
        {"name": "http", "containerPort": 80, "protocol": "TCP"},
        {"name": "http", "containerPort": 81, "protocol": "TCP"}]},
        [f'{C0}.ports[1].name: Duplicate value: "http"'], id="container-port-name-duplicate"),
    pytest.param({"spec__restartPolicy": "Sometimes"},
                 ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
                  '"Always", "Never", "OnFailure"'], id="restart-policy"),
    pytest.param({"spec__dnsPolicy": "Google"},
                 ['spec.dnsPolicy: Unsupported value: "Google": supported values: '
                  '"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"'],
                 id="dns-policy"),
    pytest.param({"spec__terminationGracePeriodSeconds": -1},
                 ["spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or "
                  "equal to 0"], id="grace-period"),
    pytest.param({"spec__volumes": [{"name": "data", "emptyDir": {}},
                                    {"name": "data", "emptyDir": {}}]},
                 ['spec.volumes[1].name: Duplicate value: "data"'], id="volume-duplicate"),
    pytest.param({"spec__volumes": [{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}]},
                 ["spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"],
                 id="volume-two-sources"),
    pytest.param({"spec__containers__0__volumeMounts__0__name": "www"},
                 [f'{C0}.volumeMounts[0].name: Not found: "www"'], id="mount-unknown-volume"),
    pytest.param({"spec__containers__0__env__0__name": "A=B"},
                 [f'{C0}.env[0].name: Invalid value: "A=B": a valid environment variable name '
                  "must consist only of printable ASCII characters other than '='"],
                 id="env-name"),
    pytest.param({"spec__containers__0__readinessProbe": {"periodSeconds": 10}},
                 [f"{C0}.readinessProbe: Required value: must specify a handler type"],
                 id="probe-no-handler"),
    pytest.param({"spec__containers__0__readinessProbe__tcpSocket": {"port": 80}},
                 [f"{C0}.readinessProbe.tcpSocket: Forbidden: may not specify more than 1 "
                  "handler type"], id="probe-two-handlers"),
    pytest.param({"spec__readinessGates": [{"conditionType": "a b"}]},
                 [f'spec.readinessGates[0].conditionType: Invalid value: "a b": {QNAME_NAME_PART}'],
                 id="readiness-gate"),
    pytest.param({"spec__containers": [{"name": "app", "image": "a"}, {"name": "app",
                                                                       "image": "b"}]},
                 ['spec.containers[0].imagePullPolicy: Required value',
                  'spec.containers[0].terminationMessagePolicy: Required value',
                  'spec.containers[1].name: Duplicate value: "app"',
                  'spec.containers[1].imagePullPolicy: Required value',
                  'spec.containers[1].terminationMessagePolicy: Required value'],
                 id="container-duplicate-undefaulted"),
    pytest.param({"spec__containers__0__resources": {"requests": {"cpu": "2"},
                                                     "limits": {"cpu": "1"}}},
                 [f'{C0}.resources.requests: Invalid value: "2": must be less than or equal to '
                  "cpu limit of 1"], id="cpu-request-over-limit"),
    pytest.param({"spec__containers__0__resources": {"requests": {"cpu": "2000m"},
                                                     "limits": {"cpu": "1.5"}}},
                 [f'{C0}.resources.requests: Invalid value: "2": must be less than or equal to '
                  "cpu limit of 1500m"], id="cpu-request-over-limit-canonical"),
    pytest.param({"spec__containers__0__resources": {"requests": {"memory": "2Gi"},
                                                     "limits": {"memory": "1024Mi"}}},
                 [f'{C0}.resources.requests: Invalid value: "2Gi": must be less than or equal '
                  "to memory limit of 1Gi"], id="memory-request-over-limit"),
    pytest.param({"spec__containers__0__resources": {"requests": {"cpu": "1", "memory": "1G"},
                                                     "limits": {"cpu": "1000m",
                                                                "memory": "1000M"}}},
                 [], id="request-equal-to-limit-written-otherwise"),
    pytest.param({"spec__containers__0__resources": {"requests": {"example.com/gpu": "1"},
                                                     "limits": {"example.com/gpu": "2"}}},
                 [f'{C0}.resources.requests: Invalid value: "1": must be equal to '
                  "example.com/gpu limit of 2"], id="extended-resource-request-below-limit"),
    pytest.param({"spec__containers__0__resources": {"limits": {"cpu": "-1"}}},
                 [f'{C0}.resources.limits[cpu]: Invalid value: "-1": must be greater than or '
                  "equal to 0"], id="negative-limit"),
])
def test_pod_spec(changes: dict[str, Any], expected: list[str]) -> None:
    assert _messages("Pod", _with(_valid("Pod"), **changes)) == expected


def test_template_errors_use_template_path() -> None:
    deploy = _with(_valid("Deployment"), spec__template__spec__containers__0__image=DELETE)
    assert _messages("Deployment", deploy) == [
        "spec.template.spec.containers[0].image: Required value"]


POD_FORBIDDEN = (
    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)"
)


@pytest.mark.parametrize(("changes", "forbidden"), [
    pytest.param({"spec__containers__0__image": "nginx:1.28"}, False, id="image"),
    pytest.param({"spec__activeDeadlineSeconds": 60}, False, id="active-deadline"),
    pytest.param({"spec__tolerations": [{"key": "k", "operator": "Exists"}]}, False,
                 id="toleration-added"),
    pytest.param({"spec__nodeName": "node-1"}, False, id="bind-once"),
    pytest.param({"spec__containers__0__ports__0__containerPort": 8080}, True, id="port"),
    pytest.param({"spec__restartPolicy": "Never"}, True, id="restart-policy"),
])
def test_pod_update(changes: dict[str, Any], forbidden: bool) -> None:
    old = _valid("Pod")
    messages = _messages("Pod", _with(old, **changes), old)
    if forbidden:
        assert len(messages) == 1
        assert messages[0].startswith(POD_FORBIDDEN + "\n")
    else:
        assert messages == []


def test_pod_node_name_cannot_change_once_bound() -> None:
    old = _with(_valid("Pod"), spec__nodeName="node-1")
    messages = _messages("Pod", _with(old, spec__nodeName="node-2"), old)
    assert messages == [POD_FORBIDDEN + "\n  spec.nodeName"]


# --- apps/v1 ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"spec__selector": DELETE}, ["spec.selector: Required value"],
                 id="selector-required"),
    pytest.param({"spec__template__metadata__labels": {"app": "x"}},
                 ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: '
                  '`selector` does not match template `labels`'], id="selector-mismatch"),
    pytest.param({"spec__selector": {}},
                 ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string"
                  "(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector "
                  "is invalid for statefulset"], id="empty-selector"),
    pytest.param({"spec__selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
                 ["spec.selector.matchExpressions[0].values: Required value: must be specified "
                  "when `operator` is 'In' or 'NotIn'"], id="selector-expression"),
    pytest.param({"spec__replicas": -1},
                 ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
                 id="replicas"),
    pytest.param({"spec__podManagementPolicy": "Random"},
                 ['spec.podManagementPolicy: Invalid value: "Random": must be \'OrderedReady\' '
                  "or 'Parallel'"], id="pod-management-policy"),
    pytest.param({"spec__updateStrategy": {"type": "Canary"}},
                 ['spec.updateStrategy: Invalid value: apps.StatefulSetUpdateStrategy{Type:'
                  '"Canary", RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}: must '
                  "be 'RollingUpdate' or 'OnDelete'"], id="update-strategy"),
    pytest.param({"spec__updateStrategy__rollingUpdate__partition": -1},
                 ["spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be "
                  "greater than or equal to 0"], id="partition"),
    pytest.param({"spec__updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
                 ["spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSet"
                  "Strategy{Partition:1, MaxUnavailable:(*intstr.IntOrString)(nil)}: only "
                  "allowed for updateStrategy 'RollingUpdate'"], id="ondelete-rolling"),
    pytest.param({"spec__template__spec__restartPolicy": "OnFailure"},
                 ['spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported '
                  'values: "Always"'], id="template-restart-policy"),
    pytest.param({"spec__serviceName": DELETE}, [], id="service-name-optional"),
    pytest.param({"spec__persistentVolumeClaimRetentionPolicy__whenScaled": "Keep"},
                 ['spec.persistentVolumeClaimRetentionPolicy.whenScaled: Unsupported value: '
                  '"Keep": supported values: "Retain", "Delete"'], id="retention-policy"),
    pytest.param({"spec__template__spec__volumes": DELETE,
                  "spec__volumeClaimTemplates": [{"metadata": {"name": "data"},
                                                  "spec": {"accessModes": ["ReadWriteOnce"]}}]},
                 [], id="mount-names-claim-template"),
    pytest.param({"spec__template__spec__volumes": DELETE},
                 ['spec.template.spec.containers[0].volumeMounts[0].name: Not found: "data"'],
                 id="mount-names-neither-volume-nor-claim"),
])
def test_statefulset(changes: dict[str, Any], expected: list[str]) -> None:
    assert _messages("StatefulSet", _with(_valid("StatefulSet"), **changes)) == expected


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"spec__replicas": 5}, [], id="replicas"),
    pytest.param({"spec__template__spec__containers__0__image": "nginx:1.28"}, [], id="template"),
    pytest.param({"spec__updateStrategy": {"type": "OnDelete"}}, [], id="update-strategy"),
    pytest.param({"spec__minReadySeconds": 5}, [], id="min-ready"),
    pytest.param({"spec__persistentVolumeClaimRetentionPolicy__whenDeleted": "Delete"}, [],
                 id="retention"),
    pytest.param({"spec__serviceName": "other"}, [STS_FORBIDDEN], id="service-name"),
    pytest.param({"spec__podManagementPolicy": "Parallel"}, [STS_FORBIDDEN], id="pmp"),
    pytest.param({"spec__selector": {"matchLabels": {"app": "web", "tier": "x"}},
                  "spec__template__metadata__labels": {"app": "web", "tier": "x"}},
                 [STS_FORBIDDEN], id="selector"),
])
def test_statefulset_update(changes: dict[str, Any], expected: list[str]) -> None:
    old = _valid("StatefulSet")
    assert _messages("StatefulSet", _with(old, **changes), old) == expected


RU = "spec.strategy.rollingUpdate"


@pytest.mark.parametrize(("kind", "changes", "expected"), [
    pytest.param("Deployment", {"spec__selector": DELETE}, ["spec.selector: Required value"],
                 id="deploy-selector-required"),
    pytest.param("Deployment", {"spec__template__metadata__labels": {"app": "x", "b": "c"}},
                 ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"x", '
                  '"b":"c"}: `selector` does not match template `labels`'],
                 id="deploy-selector-mismatch"),
    pytest.param("Deployment", {"spec__replicas": -2},
                 ["spec.replicas: Invalid value: -2: must be greater than or equal to 0"],
                 id="deploy-replicas"),
    pytest.param("Deployment", {"spec__strategy__type": "Recreate"},
                 ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
                  "`type` is 'Recreate'"], id="recreate-with-rolling"),
    pytest.param("Deployment", {"spec__strategy": {"type": "Recreate"}}, [], id="recreate"),
    pytest.param("Deployment", {f"{RU.replace('.', '__')}__maxSurge": 0,
                                f"{RU.replace('.', '__')}__maxUnavailable": "0%"},
                 [f"{RU}.maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0"],
                 id="both-zero"),
    pytest.param("Deployment", {f"{RU.replace('.', '__')}__maxSurge": "abc"},
                 [f"{RU}.maxSurge: Invalid value: abc: a valid percent string must be a numeric "
                  "string followed by an ending '%' (e.g. '1%',  or '93%', regex used for "
                  "validation is '[0-9]+%')"], id="bad-percent"),
    pytest.param("Deployment", {f"{RU.replace('.', '__')}__maxUnavailable": "120%"},
                 [f"{RU}.maxUnavailable: Invalid value: 120%: must not be greater than 100%"],
                 id="over-100-percent"),
    pytest.param("Deployment", {f"{RU.replace('.', '__')}__maxUnavailable": -1},
                 [f"{RU}.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"],
                 id="negative-int"),
    pytest.param("Deployment", {"spec__strategy": {"type": "BlueGreen"}},
                 ['spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
                  'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: '
                  '"Recreate", "RollingUpdate"'], id="strategy-type"),
    pytest.param("Deployment", {"spec__template__spec__restartPolicy": "Never"},
                 ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported '
                  'values: "Always"'], id="deploy-restart-policy"),
    pytest.param("ReplicaSet", {"spec__selector": DELETE}, ["spec.selector: Required value"],
                 id="rs-selector-required"),
    pytest.param("ReplicaSet", {"spec__replicas": -1},
                 ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
                 id="rs-replicas"),
    pytest.param("ReplicaSet", {"spec__template__metadata__labels": {}},
                 ["spec.template.metadata.labels: Invalid value: map[string]string{}: "
                  "`selector` does not match template `labels`"], id="rs-mismatch"),
])
def test_deployment_and_replicaset(kind: str, changes: dict[str, Any],
                                   expected: list[str]) -> None:
    assert _messages(kind, _with(_valid(kind), **changes)) == expected


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_selector_immutable(kind: str) -> None:
    old = _valid(kind)
    new = _with(old, spec__selector={"matchLabels": {"app": "web", "v": "2"}},
                spec__template__metadata__labels={"app": "web", "v": "2"})
    assert _messages(kind, new, old) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":'
        '"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is '
        "immutable"]
    assert _messages(kind, _with(old, spec__replicas=7), old) == []


# --- other kinds -------------------------------------------------------------------------------

CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


@pytest.mark.parametrize(("kind", "changes", "expected"), [
    pytest.param("ConfigMap", {"data": {"a/b": "x"}},
                 [f'data[a/b]: Invalid value: "a/b": {CONFIG_KEY}'], id="configmap-key"),
    pytest.param("ConfigMap", {"data": {"..": "x"}},
                 ['data[..]: Invalid value: "..": must not be \'..\''], id="configmap-dotdot"),
    pytest.param("Secret", {"data": {"bad key": "eA=="}},
                 [f'data[bad key]: Invalid value: "bad key": {CONFIG_KEY}'], id="secret-key"),
    pytest.param("EndpointSlice", {"addressType": "IPv5"},
                 ['addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", '
                  '"IPv6"'], id="slice-address-type"),
    pytest.param("EndpointSlice", {"endpoints__0__addresses": ["fd00::1"]},
                 ['endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 '
                  'address'], id="slice-address"),
    pytest.param("EndpointSlice", {"endpoints__0__addresses": []},
                 ["endpoints[0].addresses: Required value: must contain at least 1 address"],
                 id="slice-no-address"),
    pytest.param("EndpointSlice", {"ports__0__port": 0},
                 ["ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
                 id="slice-port"),
    pytest.param("EndpointSlice", {"ports__0__protocol": "ICMP"},
                 ['ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", '
                  '"UDP"'], id="slice-protocol"),
    pytest.param("Endpoints", {"subsets__0__addresses__0__ip": "10.0.0"},
                 [f'subsets[0].addresses[0].ip: Invalid value: "10.0.0": {IP}'],
                 id="endpoints-ip"),
    pytest.param("Endpoints", {"subsets__0__ports__0__port": 65536},
                 ["subsets[0].ports[0].port: Invalid value: 65536: must be between 1 and 65535, "
                  "inclusive"], id="endpoints-port"),
    pytest.param("Lease", {"metadata__name": "Node_1"},
                 [f'metadata.name: Invalid value: "Node_1": {DNS1123_SUBDOMAIN}'], id="lease-name"),
    pytest.param("Event", {"metadata__namespace": DELETE},
                 ["metadata.namespace: Required value"], id="event-namespace"),
    pytest.param("ConfigMap", {"data": {"a": "x" * MIB, "b": "y"}},
                 [f"[]: Too long: may not be more than {MIB} bytes"], id="configmap-over-1mib"),
    pytest.param("ConfigMap", {"data": {"a": "x" * (MIB - 1), "b": "y"}}, [],
                 id="configmap-1mib"),
    pytest.param("ConfigMap", {"data": {"a": "é" * (MIB // 2)}, "binaryData": {"b": "eA=="}},
                 [f"[]: Too long: may not be more than {MIB} bytes"],
                 id="configmap-counts-utf8-bytes-and-binary-data"),
    pytest.param("Secret", {"data": {"a": base64.b64encode(b"x" * (MIB + 1)).decode()}},
                 [f"data: Too long: may not be more than {MIB} bytes"], id="secret-over-1mib"),
    pytest.param("Secret", {"data": {"a": base64.b64encode(b"x" * MIB).decode()}}, [],
                 id="secret-counts-decoded-bytes"),
])
def test_other_kinds(kind: str, changes: dict[str, Any], expected: list[str]) -> None:
    assert _messages(kind, _with(_valid(kind), **changes)) == expected


@pytest.mark.parametrize(("kind", "old_changes", "changes", "expected"), [
    pytest.param("Secret", {}, {"type": "kubernetes.io/tls"},
                 ['type: Invalid value: "kubernetes.io/tls": field is immutable'],
                 id="secret-type"),
    pytest.param("ConfigMap", {"immutable": True}, {"data": {"k": "v"}},
                 ["data: Forbidden: field is immutable when `immutable` is set"],
                 id="immutable-configmap"),
    pytest.param("EndpointSlice", {}, {"addressType": "IPv6",
                                       "endpoints__0__addresses": ["fd00::1"]},
                 ['addressType: Invalid value: "IPv6": field is immutable'],
                 id="slice-address-type"),
])
def test_other_updates(kind: str, old_changes: dict[str, Any], changes: dict[str, Any],
                       expected: list[str]) -> None:
    old = _with(_valid(kind), **old_changes)
    assert _messages(kind, _with(old, **changes), old) == expected


def test_validate_does_not_mutate() -> None:
    obj = _valid("StatefulSet")
    old = _with(obj, spec__serviceName="x")
    snapshot = copy.deepcopy((obj, old))
    validation.validate("StatefulSet", obj, old)
    assert (obj, old) == snapshot


def test_duplicate_messages_are_dropped() -> None:
    pod = _with(_valid("Pod"), metadata__labels={"bad key": "v", "bad key2": "v"})
    messages = _messages("Pod", pod)
    assert len(messages) == len(set(messages)) == 2
