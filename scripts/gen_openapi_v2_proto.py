#!/usr/bin/env python3
"""Generate `src/tinykube/apiserver/openapi_v2_proto.json`, the gnostic message table that
`apiserver.gnostic` encodes `/openapi/v2` with.

kubectl asks for `/openapi/v2` only as protobuf (`application/com.github.proto-openapi.spec.v2
@v1.0+protobuf`): gnostic's `openapi.v2.Document` message (google/gnostic-models
`openapiv2/OpenAPIv2.proto`). The field numbers come from the real kubectl binary, which links
gnostic-models: protoc-gen-go registers each `.proto` as its raw (not gzipped)
`FileDescriptorProto`, which starts with field 1, the file name `openapiv2/OpenAPIv2.proto`.
This script finds it, walks it with tinykube's own wire reader (`api.protobuf.fields`) and writes

    {"openapi.v2.Document": {"swagger": [1, "string", "single"],
                             "paths": [8, "openapi.v2.Paths", "single"], ...}, ...}

keyed by the proto field name; a field's type is a scalar name or a message name, its shape
`single` or `repeated` (the gnostic messages have no maps: named entries are repeated
`Named*` messages).

Usage: scripts/gen_openapi_v2_proto.py [--kubectl PATH] [--check]
       (--check exits 1 if the committed file differs from what the binary gives)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tinykube.api import protobuf  # noqa: E402

OUTPUT = ROOT / "src" / "tinykube" / "apiserver" / "openapi_v2_proto.json"
FILE_NAME = b"openapiv2/OpenAPIv2.proto"
_START = b"\n" + bytes([len(FILE_NAME)]) + FILE_NAME  # field 1 (name), length, the name
_FILE_FIELDS = range(1, 15)  # FileDescriptorProto's field numbers
_SCALARS = {1: "double", 3: "int64", 8: "bool", 9: "string", 13: "uint32", 14: "enum"}
_MESSAGE, _REPEATED, _LENGTH_DELIMITED = 11, 3, 2


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return result, pos


def raw_descriptor(binary: bytes) -> bytes:
    """The FileDescriptorProto bytes: its length-delimited fields, up to the first byte that
    cannot start another of them (the next symbol in the binary)."""
    start = binary.find(_START)
    if start < 0:
        raise SystemExit(f"the binary does not embed {FILE_NAME.decode()}")
    pos = start
    while True:
        key, after = _varint(binary, pos)
        if key >> 3 not in _FILE_FIELDS or key & 7 != _LENGTH_DELIMITED:
            return binary[start:pos]
        size, after = _varint(binary, after)
        pos = after + size


def _parts(data: int | bytes) -> list[tuple[int, int | bytes]]:
    assert isinstance(data, bytes)
    return [(number, raw) for number, _wire, raw in protobuf.fields(data)]


def _text(raw: int | bytes) -> str:
    assert isinstance(raw, bytes)
    return raw.decode()


def _field(data: int | bytes) -> tuple[str, list[Any]]:
    """A FieldDescriptorProto: 1 name, 3 number, 4 label, 5 type, 6 type_name."""
    parts = dict(_parts(data))
    kind = _text(parts[6]).lstrip(".") if parts[5] == _MESSAGE else _SCALARS[int(parts[5])]
    shape = "repeated" if parts.get(4) == _REPEATED else "single"
    return _text(parts[1]), [parts[3], kind, shape]


def build(binary: bytes) -> dict[str, dict[str, list[Any]]]:
    """Every message of the file (gnostic's are not nested): name -> field -> entry."""
    package = ""
    messages: dict[str, dict[str, list[Any]]] = {}
    for number, raw in _parts(raw_descriptor(binary)):
        if number == 2:
            package = _text(raw)
        elif number == 4:  # DescriptorProto: 1 name, 2 field
            name, fields = "", {}
            for part, value in _parts(raw):
                if part == 1:
                    name = _text(value)
                elif part == 2:
                    field, entry = _field(value)
                    fields[field] = entry
            messages[name] = fields
    return {f"{package}.{name}": fields for name, fields in sorted(messages.items())}


def render(messages: dict[str, dict[str, list[Any]]]) -> str:
    """One message per line, so a regenerated file diffs readably."""
    lines = ",\n".join(f"  {json.dumps(name)}: {json.dumps(fields, separators=(',', ':'))}"
                       for name, fields in messages.items())
    return f"{{\n{lines}\n}}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default="/usr/bin/kubectl",
                        help="a kubectl binary that links gnostic-models (any recent one)")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render(build(Path(args.kubectl).resolve().read_bytes()))
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run scripts/gen_openapi_v2_proto.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
