"""kube's CEL libraries (`k8s.io/apiserver/pkg/cel/library`) as functions for the engine.

Every function is registered by name; CEL's `x.f(a)` is `f(x, a)`, so one Python function
serves the member and the global spelling. Names several libraries share (`indexOf` on lists
and strings, `add`/`sub`/`sign` on quantities) dispatch on the receiver's type.

The cel-rust bindings carry only CEL's own value types across the boundary, so kube's opaque
types (Quantity, URL, IP, CIDR) are small maps tagged with one key (`{"@quantity": "1Gi"}`):
equality of two such values compares their canonical text, and the functions below are the
only way to read them, as in kube. `type()` of one says `map`, where kube says its own name.

Libraries: lists (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf`), strings
extensions (`charAt`, `indexOf`, `lastIndexOf`, `lowerAscii`, `upperAscii`, `replace`,
`split`, `substring`, `trim`, `join`, `reverse`), regex (`find`, `findAll`), URLs, quantities,
IPs and CIDRs, and the sets library (`sets.contains`, `sets.equivalent`, `sets.intersects`).
`jsonpatch.escapeKey` (mutating policies' JSON patch paths) too, and the authorizer library
(`authorizer.group(g).resource(r)...check(verb).allowed()`, `authz.py`), whose `check` asks
the authorizer the engine binds to each evaluation.
Not here: `format.*` and `strings.format` (they return optionals, which the parser lacks).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import urllib.parse
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from tinykube.api import quantity as quantities
from tinykube.api.cel import authz

Tagged = dict[str, str]
_QUANTITY, _URL, _IP, _CIDR = "@quantity", "@url", "@ip", "@cidr"


class LibraryError(ValueError):
    """A library function refused its arguments (shown as the evaluation error)."""


def _tag(value: Any, key: str) -> str | None:
    if isinstance(value, dict) and len(value) == 1 and key in value:
        return str(value[key])
    return None


# --- lists and strings ----------------------------------------------------------------------

def is_sorted(items: list[Any]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(items))


def list_sum(items: list[Any]) -> Any:
    if items and _tag(items[0], _QUANTITY) is not None:
        return _quantity_of(sum((_value(q) for q in items), Fraction(0)))
    return sum(items, 0.0 if any(isinstance(x, float) for x in items) else 0)


def list_min(items: list[Any]) -> Any:
    if not items:
        raise LibraryError("min called on empty list")
    return min(items)


def list_max(items: list[Any]) -> Any:
    if not items:
        raise LibraryError("max called on empty list")
    return max(items)


def index_of(target: Any, item: Any, start: int = 0) -> int:
    if isinstance(target, str):
        return _string_index(target, item, start)
    for i, x in enumerate(target):
        if x == item and type(x) is type(item):
            return i
    return -1


def last_index_of(target: Any, item: Any, end: int | None = None) -> int:
    if isinstance(target, str):
        if item == "":
            return len(target) if end is None else end
        stop = len(target) if end is None else end + len(item)
        return target.rfind(item, 0, stop)
    for i in range(len(target) - 1, -1, -1):
        if target[i] == item and type(target[i]) is type(item):
            return i
    return -1


def _string_index(text: str, sub: str, start: int) -> int:
    if start < 0 or start > len(text):
        raise LibraryError(f"index out of range: {start}")
    return text.find(sub, start)


def char_at(text: str, index: int) -> str:
    if index < 0 or index > len(text):
        raise LibraryError(f"index out of range: {index}")
    return text[index:index + 1]


def replace(text: str, old: str, new: str, count: int = -1) -> str:
    return text.replace(old, new, count)


def split(text: str, sep: str, count: int = -1) -> list[str]:
    if count == 0:
        return []
    if sep == "":
        parts = list(text)
        return parts if count < 0 else [*parts[:count - 1], "".join(parts[count - 1:])]
    return text.split(sep, count - 1 if count > 0 else -1)


def substring(text: str, start: int, end: int | None = None) -> str:
    stop = len(text) if end is None else end
    if start < 0 or stop > len(text) or start > stop:
        raise LibraryError(f"index out of range: {start if start < 0 else stop}")
    return text[start:stop]


def join(items: list[str], sep: str = "") -> str:
    return sep.join(items)


def reverse(value: Any) -> Any:
    return value[::-1]


# --- regex ----------------------------------------------------------------------------------

def find(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    return match.group(0) if match else ""


def find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, text)]
    return found if limit < 0 else found[:limit]


# --- quantities -----------------------------------------------------------------------------

def _parse_quantity(text: str) -> tuple[Fraction, str]:
    parsed = quantities.parse(text) if isinstance(text, str) else None
    if parsed is None:
        raise LibraryError("quantities must match the regular expression "
                           "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    return parsed


def quantity(text: str) -> Tagged:
    value, form = _parse_quantity(text)
    return {_QUANTITY: quantities.canonical(value, form)}


def is_quantity(text: str) -> bool:
    return isinstance(text, str) and quantities.parse(text) is not None


def _value(q: Any) -> Fraction:
    text = _tag(q, _QUANTITY)
    if text is None:
        raise LibraryError("no such overload")
    return _parse_quantity(text)[0]


def _quantity_of(value: Fraction) -> Tagged:
    return {_QUANTITY: quantities.canonical(value, quantities.DECIMAL)}


def _q_or_int(value: Any) -> Fraction:
    return Fraction(value) if isinstance(value, int) else _value(value)


def add(a: Any, b: Any) -> Any:
    return _quantity_of(_value(a) + _q_or_int(b))


def sub(a: Any, b: Any) -> Any:
    return _quantity_of(_value(a) - _q_or_int(b))


def sign(q: Any) -> int:
    value = _value(q)
    return (value > 0) - (value < 0)


def compare_to(a: Any, b: Any) -> int:
    x, y = _value(a), _value(b)
    return (x > y) - (x < y)


def is_greater_than(a: Any, b: Any) -> bool:
    return _value(a) > _value(b)


def is_less_than(a: Any, b: Any) -> bool:
    return _value(a) < _value(b)


def is_integer(q: Any) -> bool:
    value = _value(q)
    return value.denominator == 1 and -(2**63) <= value < 2**63


def as_integer(q: Any) -> int:
    if not is_integer(q):
        raise LibraryError("cannot convert value to integer")
    return int(_value(q))


def as_approximate_float(q: Any) -> float:
    return float(_value(q))


# --- URLs -----------------------------------------------------------------------------------

def url(text: str) -> Tagged:
    if not is_url(text):
        raise LibraryError(f"URL parse error during conversion from string: parse {text!r}: "
                           "invalid URI for request")
    return {_URL: text}


def is_url(text: str) -> bool:
    if not isinstance(text, str) or not text or text.startswith("#"):
        return False
    parts = urllib.parse.urlsplit(text)
    return bool(parts.scheme) or text.startswith("/")


def _url(u: Any) -> urllib.parse.SplitResult:
    text = _tag(u, _URL)
    if text is None:
        raise LibraryError("no such overload")
    return urllib.parse.urlsplit(text)


def get_scheme(u: Any) -> str:
    return _url(u).scheme


def get_host(u: Any) -> str:
    return _url(u).netloc.rpartition("@")[2]


def get_hostname(u: Any) -> str:
    host = get_host(u)
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.partition(":")[0]


def get_port(u: Any) -> str:
    host = get_host(u)
    tail = host[host.index("]") + 1:] if host.startswith("[") else host
    return tail.partition(":")[2]


def get_escaped_path(u: Any) -> str:
    return _url(u).path


def get_query(u: Any) -> dict[str, list[str]]:
    return {k: v for k, v in urllib.parse.parse_qs(_url(u).query, keep_blank_values=True).items()}


# --- IPs and CIDRs --------------------------------------------------------------------------

def ip(text: str) -> Tagged:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise LibraryError(f"IP Address {text!r} parse error during conversion from string: "
                           "ParseAddr(" + repr(text) + "): unable to parse IP") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise LibraryError(f"IPv4-mapped IPv6 address {text!r} is not allowed")
    return {_IP: str(address)}


def is_ip(text: str) -> bool:
    try:
        ip(text)
    except (LibraryError, ValueError):
        return False
    return True


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    text = _tag(value, _IP)
    if text is None:
        raise LibraryError("no such overload")
    return ipaddress.ip_address(text)


def family(value: Any) -> int:
    if _tag(value, _CIDR) is not None:
        return _cidr(value).version
    return 4 if _ip(value).version == 4 else 6


def is_canonical(text: str) -> bool:
    return str(ipaddress.ip_address(text)) == text


def cidr(text: str) -> Tagged:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise LibraryError(f"network address {text!r} parse error during conversion from "
                           "string") from None
    address = text.partition("/")[0]
    return {_CIDR: f"{ipaddress.ip_address(address)}/{network.prefixlen}"}


def is_cidr(text: str) -> bool:
    try:
        cidr(text)
    except (LibraryError, ValueError):
        return False
    return "/" in text


def _cidr(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = _tag(value, _CIDR)
    if text is None:
        raise LibraryError("no such overload")
    return ipaddress.ip_network(text, strict=False)


def contains_ip(network: Any, address: Any) -> bool:
    target = ipaddress.ip_address(address) if isinstance(address, str) else _ip(address)
    return target in _cidr(network)


def contains_cidr(network: Any, other: Any) -> bool:
    inner = _cidr(cidr(other) if isinstance(other, str) else other)
    outer = _cidr(network)
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def prefix_length(network: Any) -> int:
    return _cidr(network).prefixlen


def masked(network: Any) -> Tagged:
    return {_CIDR: str(_cidr(network))}


def ip_of(value: Any) -> Tagged:
    """`cidr.ip()` (the address part) or `ip()` of a string."""
    text = _tag(value, _CIDR)
    return {_IP: text.partition("/")[0]} if text is not None else ip(value)


def _ip_pred(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: check(_ip(value))


# --- sets -----------------------------------------------------------------------------------

def sets_contains(a: list[Any], b: list[Any]) -> bool:
    return all(x in a for x in b)


def sets_equivalent(a: list[Any], b: list[Any]) -> bool:
    return sets_contains(a, b) and sets_contains(b, a)


def sets_intersects(a: list[Any], b: list[Any]) -> bool:
    return any(x in a for x in b)


def escape_key(key: str) -> str:
    """kube's `jsonpatch.escapeKey`: a map key as one JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "isSorted": is_sorted, "sum": list_sum, "min": list_min, "max": list_max,
    "indexOf": index_of, "lastIndexOf": last_index_of,
    "charAt": char_at, "lowerAscii": lambda s: s.lower() if s.isascii() else "".join(
        c.lower() if c.isascii() else c for c in s),
    "upperAscii": lambda s: "".join(c.upper() if c.isascii() else c for c in s),
    "replace": replace, "split": split, "substring": substring, "trim": str.strip,
    "join": join, "reverse": reverse,
    "find": find, "findAll": find_all,
    "quantity": quantity, "isQuantity": is_quantity, "add": add, "sub": sub, "sign": sign,
    "compareTo": compare_to, "isGreaterThan": is_greater_than, "isLessThan": is_less_than,
    "isInteger": is_integer, "asInteger": as_integer,
    "asApproximateFloat": as_approximate_float,
    "url": url, "isURL": is_url, "getScheme": get_scheme, "getHost": get_host,
    "getHostname": get_hostname, "getPort": get_port, "getEscapedPath": get_escaped_path,
    "getQuery": get_query,
    "ip": ip_of, "isIP": is_ip, "family": family, "ip.isCanonical": is_canonical,
    "isUnspecified": _ip_pred(lambda a: a.is_unspecified),
    "isLoopback": _ip_pred(lambda a: a.is_loopback),
    "isLinkLocalMulticast": _ip_pred(lambda a: a.is_multicast and a.is_link_local),
    "isLinkLocalUnicast": _ip_pred(lambda a: a.is_link_local and not a.is_multicast),
    "isGlobalUnicast": _ip_pred(lambda a: not (a.is_multicast or a.is_loopback or
                                               a.is_link_local or a.is_unspecified or
                                               a == ipaddress.ip_address("255.255.255.255"))),
    "cidr": cidr, "isCIDR": is_cidr, "containsIP": contains_ip, "containsCIDR": contains_cidr,
    "prefixLength": prefix_length, "masked": masked,
    "string": lambda value: ("true" if value else "false") if isinstance(value, bool)
    else str(value),  # cel-rust's own `string()` lacks the bool overload
    "sets.contains": sets_contains, "sets.equivalent": sets_equivalent,
    "sets.intersects": sets_intersects,
    "jsonpatch.escapeKey": escape_key,
    **authz.FUNCTIONS,
}
