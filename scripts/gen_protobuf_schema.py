#!/usr/bin/env python3
"""Generate `src/tinykube/api/protobuf_schema.json`, the schema `api.protobuf` decodes against.

The source of truth is the real kubectl binary: a Go program built with Kubernetes' generated
protobuf code registers each `generated.proto` as a gzipped `FileDescriptorProto`. This script
finds those gzip streams in the binary, decodes the descriptors with tinykube's own wire reader
(`descriptor.proto` is itself protobuf; the few fields needed are listed in `_DESCRIPTOR`), and
keeps every message reachable from the kinds tinykube serves, so the schema always matches the
kinds in `api.resources`. It writes

    {"kinds": {"v1/Pod": "k8s.io.api.core.v1.Pod", ...},
     "messages": {"k8s.io.api.core.v1.Pod": {"1": ["metadata", "<message name>", "single"], ...}}}

where a field's type is a scalar (`string`, `int32`, `int64`, `bool`, `bytes`, ...) or a message
name, and its shape is `single`, `repeated` or `map` (then the type is the map's value type;
Kubernetes map keys are always strings), or `inline`.

`inline` marks a Go struct embedded with `json:",inline"` (`Probe.ProbeHandler`,
`Volume.VolumeSource`, `EphemeralContainer.EphemeralContainerCommon`, ...): on the wire it is an
ordinary message field (`handler`, `volumeSource`), but in JSON its fields sit on the parent, so
the decoder merges them there. The descriptors cannot tell such a field from any other, so the
generator reads it off the JSON schema (`schema_data.json`, from the official client's models):
walking each kind's message and JSON type side by side, a message field whose name the JSON type
lacks while every field of its message is a property of the JSON type is inline. Messages with no
JSON type (the `Binding` request body) fall back to Go's own struct tags, which the binary keeps
for reflection: a field is inline there when a `json:",inline" protobuf:"...,N,...,name=X"` tag
names its number and name. The tags also check the JSON verdicts (a tag saying inline where the
JSON schema has the field by name stops the generator), and so does a field that neither source
explains. (The tags alone are not enough: they do not say which struct they belong to, and
`EphemeralContainerCommon`'s names no field.)

kubectl v1.33 and later no longer embed the descriptors, so the source is the machine image's
v1.32; fields added upstream since then are unknown to the schema and skipped when decoding.

Usage: scripts/gen_protobuf_schema.py [--kubectl PATH] [--check]
       (--check exits 1 if the committed file differs from what the binary gives)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tinykube.api import protobuf, resources  # noqa: E402

OUTPUT = ROOT / "src" / "tinykube" / "api" / "protobuf_schema.json"
JSON_SCHEMA = ROOT / "src" / "tinykube" / "api" / "schema_data.json"
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # Go's gzip writer, no name or time

# FieldDescriptorProto.type numbers -> the scalar names api.protobuf understands.
_SCALARS = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 8: "bool",
            9: "string", 12: "bytes", 13: "uint32"}
_MESSAGE, _REPEATED = 11, 3

# Extra roots besides each served kind: request bodies of subresources and deletes.
_EXTRA_ROOTS = {"autoscaling/v1/Scale": "k8s.io.api.autoscaling.v1.Scale",
                "v1/Binding": "k8s.io.api.core.v1.Binding",
                # kubectl create token sends it in protobuf
                "authentication.k8s.io/v1/TokenRequest":
                    "k8s.io.api.authentication.v1.TokenRequest",
                "meta.k8s.io/v1/DeleteOptions": protobuf.META + "DeleteOptions"}


def descriptors(binary: bytes) -> Iterator[bytes]:
    """Every gzip stream in the binary that inflates to something (candidate descriptors)."""
    start = binary.find(GZIP_HEADER)
    while start >= 0:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            inflated = inflate.decompress(binary[start:start + (1 << 21)])
        except zlib.error:
            inflated = b""
        if inflated:
            yield inflated
        start = binary.find(GZIP_HEADER, start + 1)


def _parts(data: bytes) -> list[tuple[int, int | bytes]]:
    return [(number, raw) for number, _wire, raw in protobuf.fields(data)]


def _text(raw: int | bytes) -> str:
    assert isinstance(raw, bytes)
    return raw.decode()


def parse_file(data: bytes) -> dict[str, Any]:
    """A FileDescriptorProto's package and messages (field 2 package, 4 message_type)."""
    package, messages = "", []
    for number, raw in _parts(data):
        if number == 2:
            package = _text(raw)
        elif number == 4:
            assert isinstance(raw, bytes)
            messages.append(raw)
    return {"package": package, "messages": messages}


def collect(data: bytes, prefix: str, out: dict[str, dict[str, Any]]) -> None:
    """A DescriptorProto (1 name, 2 field, 3 nested_type, 7 options) and its nested messages."""
    name, fields, nested, is_map = "", [], [], False
    for number, raw in _parts(data):
        if number == 1:
            name = _text(raw)
        elif number == 2:
            fields.append(_field(raw))
        elif number == 3:
            assert isinstance(raw, bytes)
            nested.append(raw)
        elif number == 7:
            assert isinstance(raw, bytes)
            is_map = any(n == 7 and v == 1 for n, v in _parts(raw))  # MessageOptions.map_entry
    full = f"{prefix}.{name}"
    out[full] = {"fields": fields, "map_entry": is_map}
    for child in nested:
        collect(child, full, out)


def _field(data: int | bytes) -> dict[str, Any]:
    """A FieldDescriptorProto: 1 name, 3 number, 4 label, 5 type, 6 type_name, 10 json_name."""
    assert isinstance(data, bytes)
    parts = dict(_parts(data))
    name = _text(parts.get(10) or parts[1])
    # admissionregistration's messages name their lists `Webhooks`; the JSON name is the Go
    # field's tag, `webhooks` (every Kubernetes JSON name starts lower case).
    name = name[:1].lower() + name[1:]
    return {"name": name, "number": parts[3],
            "repeated": parts.get(4) == _REPEATED, "type": parts[5],
            "type_name": _text(parts.get(6, b"")).lstrip(".")}


def all_messages(binary: bytes) -> dict[str, dict[str, Any]]:
    messages: dict[str, dict[str, Any]] = {}
    for data in descriptors(binary):
        try:
            parsed = parse_file(data)
        except (protobuf.ProtobufError, UnicodeDecodeError):
            continue
        if not parsed["package"].startswith("k8s.io."):
            continue
        for message in parsed["messages"]:
            collect(message, parsed["package"], messages)
    return messages


# Groups whose messages kubectl does not carry: kube-aggregator's APIService (kubectl has no
# client for it) and apiextensions-apiserver's CustomResourceDefinition, so their bodies in
# protobuf are refused as an unknown kind.
_NO_DESCRIPTORS = {"apiregistration.k8s.io", "apiextensions.k8s.io"}


def roots() -> dict[str, str]:
    kinds = {}
    for res in resources.ALL:
        if res.provider or res.group in _NO_DESCRIPTORS:  # metrics: read-only
            continue
        package = f"k8s.io.api.{res.group.split('.')[0] if res.group else 'core'}"
        kinds[f"{res.api_version}/{res.kind}"] = f"{package}.{res.version}.{res.kind}"
    return {**kinds, **_EXTRA_ROOTS}


def build(binary: bytes, json_schema: dict[str, Any]) -> dict[str, Any]:
    """The compact schema: the served kinds and every message they reach."""
    every = all_messages(binary)
    kinds = roots()
    missing = sorted(name for name in kinds.values() if name not in every)
    if missing:
        raise SystemExit(
            f"the binary has no descriptor for {', '.join(missing)}; kubectl v1.33 and later no "
            "longer register them: pass --kubectl with a v1.32 or older binary")
    inline = Inline(every, json_schema, inline_tags(binary))
    inline.walk({message: json_schema["kinds"].get(kind) for kind, message in kinds.items()})
    schema: dict[str, dict[str, list[str]]] = {}
    todo = list(kinds.values())
    while todo:
        name = todo.pop()
        if name in schema or name in protobuf.SPECIAL_MESSAGES:
            continue
        schema[name] = {}
        for field in every[name]["fields"]:
            kind, shape = _kind(field, every)
            if inline.is_inline(name, field):
                shape = "inline"
            schema[name][str(field["number"])] = [field["name"], kind, shape]
            if "." in kind:
                todo.append(kind)
    return {"kinds": dict(sorted(kinds.items())), "messages": dict(sorted(schema.items()))}


def inline_tags(binary: bytes) -> set[tuple[int, str]]:
    """(number, name) of every protobuf field whose Go struct tag says `json:",inline"`."""
    found = re.findall(rb'json:",inline" protobuf:"[a-z0-9]+,(\d+),[a-z,]*?name=(\w+)"', binary)
    return {(int(number), name.decode()) for number, name in found}


class Inline:
    """Which message fields are Go `json:",inline"` embeddings (see the module docstring).

    `walk` pairs each protobuf message with the JSON type (a `schema_data.json` model name) it
    decodes to, from the kinds down: a field's message pairs with the JSON type of the property
    of the same name, an inline field's message with its parent's own JSON type.
    """

    def __init__(self, every: dict[str, dict[str, Any]], json_schema: dict[str, Any],
                 tags: set[tuple[int, str]]) -> None:
        self.every, self.types, self.tags = every, json_schema["types"], tags
        self.paired: dict[str, set[str]] = {}

    def walk(self, roots: dict[str, str | None]) -> None:
        todo = [(message, json_type) for message, json_type in roots.items() if json_type]
        while todo:
            message, json_type = todo.pop()
            if message in protobuf.SPECIAL_MESSAGES or json_type in self.paired.get(message, ()):
                continue
            self.paired.setdefault(message, set()).add(json_type)
            properties = self.types[json_type]
            for field in self.every[message]["fields"]:
                if field["type"] != _MESSAGE or self.every[field["type_name"]]["map_entry"]:
                    continue
                if self._inline_in(message, json_type, field):
                    todo.append((field["type_name"], json_type))
                elif properties.get(field["name"], "").removeprefix("[]") in self.types:
                    todo.append((field["type_name"], properties[field["name"]].removeprefix("[]")))

    def is_inline(self, message: str, field: dict[str, Any]) -> bool:
        if field["type"] != _MESSAGE or field["repeated"]:
            return False
        json_types = self.paired.get(message)
        if not json_types:  # no JSON type to compare with: Go's struct tags decide
            return (field["number"], field["name"]) in self.tags
        verdicts = {self._inline_in(message, json_type, field) for json_type in json_types}
        if len(verdicts) > 1:
            raise SystemExit(f"{message}.{field['name']} is inline in only some of "
                             f"{', '.join(sorted(json_types))}")
        verdict = verdicts.pop()
        if not verdict and (field["number"], field["name"]) in self.tags:
            raise SystemExit(f"{message}.{field['name']}: the binary's struct tags say inline, "
                             f"the JSON schema ({', '.join(sorted(json_types))}) says not")
        return verdict

    def _flat_names(self, message: str, properties: set[str]) -> set[str]:
        """The JSON names `message`'s fields contribute to a parent, an embedding within the
        embedding (`RuleWithOperations.Rule` in `NamedRuleWithOperations`) by its own fields."""
        names: set[str] = set()
        for field in self.every[message]["fields"]:
            if field["name"] not in properties and field["type"] == _MESSAGE and \
                    not field["repeated"] and not self.every[field["type_name"]]["map_entry"]:
                inner = self._flat_names(field["type_name"], properties)
                if inner and inner <= properties:
                    names |= inner
                    continue
            names.add(field["name"])
        return names

    def _inline_in(self, message: str, json_type: str, field: dict[str, Any]) -> bool:
        properties = self.types[json_type]
        if field["name"] in properties:
            return False
        names = self._flat_names(field["type_name"], set(properties))
        if names and names <= set(properties):
            return True
        raise SystemExit(
            f"{message}.{field['name']} is neither a property of {json_type} nor an inline "
            f"embedding of its fields ({', '.join(sorted(names - set(properties)))} missing); "
            "is schema_data.json from an older client than the kubectl binary?")


def _kind(field: dict[str, Any], every: dict[str, dict[str, Any]]) -> tuple[str, str]:
    if field["type"] != _MESSAGE:
        return _SCALARS[field["type"]], "repeated" if field["repeated"] else "single"
    target = every[field["type_name"]]
    if target["map_entry"]:
        value = next(f for f in target["fields"] if f["number"] == 2)
        return _kind(value, every)[0], "map"
    return field["type_name"], "repeated" if field["repeated"] else "single"


def render(schema: dict[str, Any]) -> str:
    """Compact JSON with one message per line, so a regenerated file diffs readably."""
    def line(key: str, value: Any) -> str:
        return f"  {json.dumps(key)}: {json.dumps(value, separators=(',', ':'))}"
    kinds = ",\n".join(line(k, v) for k, v in schema["kinds"].items())
    messages = ",\n".join(line(k, v) for k, v in schema["messages"].items())
    return f'{{"kinds": {{\n{kinds}\n}},\n"messages": {{\n{messages}\n}}}}\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default="/usr/bin/kubectl",
                        help="a kubectl binary up to v1.32 (the machine image's)")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    schema = build(Path(args.kubectl).resolve().read_bytes(), json.loads(JSON_SCHEMA.read_text()))
    text = render(schema)
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run scripts/gen_protobuf_schema.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} ({len(schema['messages'])} messages, {len(schema['kinds'])} kinds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
