"""Text output of an explanation: the dicts of `names` and `service`, for a terminal.

Indented, one fact a line, the reasons last with their fix; nothing here decides anything.
"""

from __future__ import annotations

from typing import Any


def text(result: dict[str, Any]) -> str:
    if result.get("kind") == "ServiceExplanation":
        return "\n".join(_service(result)) + "\n"
    return "\n".join(_name(result)) + "\n"


def _reasons(reasons: list[dict[str, str]], indent: str) -> list[str]:
    lines = []
    for r in reasons:
        lines.append(f"{indent}- {r['text']}")
        if r.get("fix"):
            lines.append(f"{indent}  fix: {r['fix']}")
    return lines


def _name(result: dict[str, Any]) -> list[str]:
    origin = result["from"]
    who = f"pod {origin['pod']}" if origin["pod"] else f"a pod in namespace {origin['namespace']}"
    conf = result["resolvConf"]
    lines = [f"{result['name']} ({result['type']}) asked by {who}",
             f"resolv.conf: search {' '.join(conf['search']) or '(none)'}; ndots:{conf['ndots']}"
             f"; nameserver {' '.join(conf['nameservers']) or '(none)'}",
             "queries, in order:"]
    for i, query in enumerate(result["queries"], 1):
        lines.append(f"  {i}. {query['name']} {query['type']} -> {query['rcode']}")
        lines += [f"       {answer}" for answer in query["answers"]]
        if query["source"] and query["answers"]:
            lines.append(f"       from {query['source']}")
        if query is not result["queries"][-1] or not query["answers"]:
            lines += _reasons(query["reasons"], "       ")
    if result["answeredBy"]:
        lines.append(f"answer: {', '.join(result['answer'])} (for {result['answeredBy']})")
    else:
        lines.append("no answer: the name does not resolve")
    for obj in result["objects"]:
        lines += _object(obj, "  ")
    if result["reasons"]:
        lines.append("why:")
        lines += _reasons(result["reasons"], "  ")
    return lines


def _object(obj: dict[str, Any], indent: str) -> list[str]:
    if obj["kind"] != "Service":
        return [f"{indent}{obj['kind']} {obj['ref']}"]
    if obj["type"] == "ExternalName":
        shape = f"ExternalName -> {obj['externalName']}"
    elif obj["headless"]:
        shape = f"{obj['type']}, headless (clusterIP: None): DNS answers the ready pod IPs"
    else:
        shape = f"{obj['type']}, cluster IP {', '.join(obj['clusterIPs'])}"
    selector = ",".join(f"{k}={v}" for k, v in sorted(obj["selector"].items())) or "(none)"
    lines = [f"{indent}Service {obj['namespace']}/{obj['name']}: {shape}",
             f"{indent}  selector {selector}; ports {'; '.join(obj['ports']) or '(none)'}"
             + ("; publishNotReadyAddresses" if obj["publishNotReadyAddresses"] else "")]
    for slice_ in obj["endpointSlices"]:
        lines.append(f"{indent}  EndpointSlice {slice_['name']} ({slice_['addressType']}; "
                     f"ports {', '.join(slice_['ports']) or 'none'}):")
        for ep in slice_["endpoints"]:
            flags = " ".join(f"{k}={str(ep[k]).lower()}" for k in ("ready", "serving",
                                                                  "terminating"))
            names = f" hostname {ep['hostname']}" if ep["hostname"] else ""
            pod = f" pod {ep['pod']}" if ep["pod"] else ""
            lines.append(f"{indent}    {','.join(ep['addresses'])}{names}{pod}: {flags}")
        if not slice_["endpoints"]:
            lines.append(f"{indent}    (no endpoints)")
    lines += _reasons(obj.get("notes") or [], indent + "  ")
    return lines


def _service(result: dict[str, Any]) -> list[str]:
    if not result["found"]:
        return [f"Service {result['namespace']}/{result['name']}: not found", "why:",
                *_reasons(result["reasons"], "  ")]
    lines = _object(result["service"], "")
    lines.append(f"path: {result['path']}")
    for rule in result["rules"]:
        chosen = ", ".join(rule["endpoints"]) or "(none: connections are refused)"
        lines.append(f"  {rule['listen']} (port {rule['portName'] or '<unnamed>'}) -> {chosen}")
        lines.append(f"    affinity: {rule['affinity']}")
    if result["changes"]:
        lines.append("what would change it:")
        lines += _reasons(result["changes"], "  ")
    return lines
