"""Hand-written API objects shaped as the API server returns them, for the DNS tests."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": f"uid-ns-{name}", "resourceVersion": "1"},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def port(name: str, number: int, protocol: str = "TCP", target: int | None = None) -> Obj:
    item: Obj = {"port": number, "protocol": protocol, "targetPort": target or number}
    if name:
        item["name"] = name
    return item


def service(name: str, ns: str = "default", cluster_ips: tuple[str, ...] = (),
            ports: tuple[Obj, ...] = (), headless: bool = False,
            external_name: str = "") -> Obj:
    spec: Obj = {"ports": list(ports), "sessionAffinity": "None", "type": "ClusterIP"}
    if external_name:
        spec = {"type": "ExternalName", "externalName": external_name, "sessionAffinity": "None"}
    elif headless:
        spec.update(clusterIP="None", clusterIPs=["None"], selector={"app": name},
                    ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack")
    else:
        families = ["IPv6" if ":" in ip else "IPv4" for ip in cluster_ips]
        spec.update(clusterIP=cluster_ips[0], clusterIPs=list(cluster_ips), selector={"app": name},
                    ipFamilies=families,
                    ipFamilyPolicy="SingleStack" if len(families) == 1 else "RequireDualStack")
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-svc-{ns}-{name}",
                         "resourceVersion": "10", "labels": {"app": name},
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec, "status": {"loadBalancer": {}}}


def endpoint(ip: str, hostname: str = "", ready: bool | None = True, pod: str = "") -> Obj:
    item: Obj = {"addresses": [ip], "nodeName": "node-1"}
    if ready is not None:
        item["conditions"] = {"ready": ready, "serving": ready, "terminating": False}
    if hostname:
        item["hostname"] = hostname
    if pod:
        item["targetRef"] = {"kind": "Pod", "name": pod, "namespace": "default",
                             "uid": f"uid-pod-{pod}"}
    return item


def endpoint_slice(service_name: str, endpoints: list[Obj], ports: tuple[Obj, ...] = (),
                   ns: str = "default", suffix: str = "abcde",
                   address_type: str = "IPv4") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-{suffix}", "namespace": ns,
                         "generateName": f"{service_name}-", "resourceVersion": "20",
                         "labels": {"kubernetes.io/service-name": service_name,
                                    "endpointslice.kubernetes.io/managed-by":
                                        "endpointslice-controller.k8s.io"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                              "name": service_name, "controller": True,
                                              "blockOwnerDeletion": True,
                                              "uid": f"uid-svc-{ns}-{service_name}"}]},
            "addressType": address_type, "endpoints": endpoints,
            "ports": [{k: v for k, v in p.items() if k != "targetPort"} for p in ports]}


def pod(name: str, ip: str, ns: str = "default", ipv6: str = "") -> Obj:
    ips = [{"ip": ip}] + ([{"ip": ipv6}] if ipv6 else [])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-pod-{name}"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], "nodeName": "node-1"},
            "status": {"phase": "Running", "podIP": ip, "podIPs": ips}}
