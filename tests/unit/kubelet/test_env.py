"""Env building: Service variables, fieldRef values, `$(VAR)` expansion, the command line."""

from __future__ import annotations

from typing import Any

import pytest

from tinykube.kubelet import env

POD: dict[str, Any] = {
    "metadata": {"name": "web-0", "namespace": "default", "uid": "u-1",
                 "labels": {"app": "web"}, "annotations": {"note": "x"}},
    "spec": {"nodeName": "n1", "serviceAccountName": "default"},
    "status": {"podIP": "127.244.0.5", "podIPs": [{"ip": "127.244.0.5"}],
               "hostIP": "127.0.0.1"},
}


def svc(name: str, namespace: str = "default", ip: str = "127.96.0.20",
        ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": ip, "ports": ports if ports is not None else
                     [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}}


@pytest.mark.parametrize(("path", "expected"), [
    pytest.param("metadata.name", "web-0", id="name"),
    pytest.param("metadata.namespace", "default", id="namespace"),
    pytest.param("metadata.uid", "u-1", id="uid"),
    pytest.param("spec.nodeName", "n1", id="node"),
    pytest.param("spec.serviceAccountName", "default", id="service-account"),
    pytest.param("status.podIP", "127.244.0.5", id="pod-ip"),
    pytest.param("status.podIPs", "127.244.0.5", id="pod-ips"),
    pytest.param("status.hostIP", "127.0.0.1", id="host-ip"),
    pytest.param("metadata.labels['app']", "web", id="label"),
    pytest.param("metadata.annotations['note']", "x", id="annotation"),
    pytest.param("metadata.labels['missing']", "", id="missing-label"),
])
def test_field_value(path: str, expected: str) -> None:
    assert env.field_value(POD, path) == expected


def test_unknown_field_path_is_an_error() -> None:
    with pytest.raises(env.EnvError, match="unsupported fieldPath"):
        env.field_value(POD, "spec.containers")


@pytest.mark.parametrize(("services", "links", "expected"), [
    pytest.param([svc("nginx-service")], True, {
        "NGINX_SERVICE_SERVICE_HOST": "127.96.0.20", "NGINX_SERVICE_SERVICE_PORT": "80",
        "NGINX_SERVICE_SERVICE_PORT_HTTP": "80",
        "NGINX_SERVICE_PORT": "tcp://127.96.0.20:80",
        "NGINX_SERVICE_PORT_80_TCP": "tcp://127.96.0.20:80",
        "NGINX_SERVICE_PORT_80_TCP_PROTO": "tcp", "NGINX_SERVICE_PORT_80_TCP_PORT": "80",
        "NGINX_SERVICE_PORT_80_TCP_ADDR": "127.96.0.20"}, id="one-service"),
    pytest.param([svc("dns", ports=[{"port": 53, "protocol": "UDP"}])], True, {
        "DNS_SERVICE_HOST": "127.96.0.20", "DNS_SERVICE_PORT": "53",
        "DNS_PORT": "udp://127.96.0.20:53", "DNS_PORT_53_UDP": "udp://127.96.0.20:53",
        "DNS_PORT_53_UDP_PROTO": "udp", "DNS_PORT_53_UDP_PORT": "53",
        "DNS_PORT_53_UDP_ADDR": "127.96.0.20"}, id="unnamed-udp-port"),
    pytest.param([svc("nginx", ip="None")], True, {}, id="headless-skipped"),
    pytest.param([svc("ext", ip="", type="ExternalName")], True, {}, id="external-name-skipped"),
    pytest.param([svc("other", namespace="team")], True, {}, id="other-namespace-skipped"),
    pytest.param([svc("a", ports=[])], False, {}, id="links-disabled"),
    pytest.param([svc("kubernetes", ip="127.96.0.1", ports=[
        {"name": "https", "port": 443, "protocol": "TCP"}])], False,
        {"KUBERNETES_SERVICE_HOST": "127.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
         "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://127.96.0.1:443",
         "KUBERNETES_PORT_443_TCP": "tcp://127.96.0.1:443",
         "KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": "443",
         "KUBERNETES_PORT_443_TCP_ADDR": "127.96.0.1"}, id="master-service-always"),
])
def test_service_env(services: list[dict[str, Any]], links: bool,
                     expected: dict[str, str]) -> None:
    assert env.service_env(services, namespace="default",
                           enable_service_links=links) == expected


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("$(A)-$(B)", "1-2", id="two"),
    pytest.param("$(MISSING)", "$(MISSING)", id="unknown-kept"),
    pytest.param("$$(A)", "$(A)", id="escaped"),
    pytest.param("$A", "$A", id="shell-syntax-untouched"),
])
def test_expand(text: str, expected: str) -> None:
    assert env.expand(text, {"A": "1", "B": "2"}) == expected


def test_container_env_order_and_precedence() -> None:
    container = {"name": "c", "env": [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "GREETING", "value": "hi $(POD_NAME) at $(X_SERVICE_HOST)"},
        {"name": "PATH", "value": "/opt/bin"}]}
    built = env.container_env(POD, container, base={"PATH": "/usr/bin", "POD_IP": "ip"},
                              services={"X_SERVICE_HOST": "10.0.0.1"})
    assert built == {"PATH": "/opt/bin", "POD_IP": "ip", "X_SERVICE_HOST": "10.0.0.1",
                     "POD_NAME": "web-0", "GREETING": "hi web-0 at 10.0.0.1"}


@pytest.mark.parametrize("container", [
    pytest.param({"env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
                 id="secret"),
    pytest.param({"envFrom": [{"configMapRef": {"name": "c"}}]}, id="env-from"),
])
def test_unsupported_sources_are_config_errors(container: dict[str, Any]) -> None:
    with pytest.raises(env.EnvError):
        env.container_env(POD, {"name": "c", **container}, base={}, services={})


@pytest.mark.parametrize(("container", "expected"), [
    pytest.param({"command": ["sh", "-c"], "args": ["echo $(NAME) $NAME"]},
                 ["sh", "-c", "echo web $NAME"], id="command-and-args"),
    pytest.param({"args": ["server", "--name=$(NAME)"]}, ["server", "--name=web"],
                 id="args-only"),
])
def test_command_line(container: dict[str, Any], expected: list[str]) -> None:
    assert env.command_line(container, {"NAME": "web"}) == expected


def test_no_command_is_an_error() -> None:
    with pytest.raises(env.EnvError, match="needs a command"):
        env.command_line({"name": "c", "image": "nginx"}, {})
