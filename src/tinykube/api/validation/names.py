"""Name, label, port and IP primitives (apimachinery `util/validation`).

The `*_errors` functions return upstream's messages for one string (DNS-1123 labels and
subdomains, DNS-1035 labels, qualified names, label values, IANA port names, config keys), with
the regex and examples upstream appends. The `check_*` helpers turn a field's value into
`FieldError`s: port ranges, non-negative numbers, enumerations, IPs. `Obj` and `Errors` are the
types every validator of the package uses.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from tinykube.api.errors import FieldError

Obj = dict[str, Any]
Errors = list[FieldError]


# --- names, labels, ports, IPs (apimachinery util/validation) --------------------------------

def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = "".join(("" if i == 0 else " or ") + f"'{ex}', " for i, ex in enumerate(examples))
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = rf"{_DNS1123_LABEL_FMT}(\.{_DNS1123_LABEL_FMT})*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
ENV_NAME_MSG = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_NON_NEGATIVE_MSG = "must be greater than or equal to 0"


def _full(fmt: str) -> re.Pattern[str]:
    return re.compile(f"^{fmt}$")


_DNS1123_LABEL_RE = _full(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = _full(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = _full(_DNS1035_LABEL_FMT)
_QNAME_RE = _full(_QNAME_FMT)
_LABEL_VALUE_RE = _full(_LABEL_VALUE_FMT)
_CONFIG_KEY_RE = _full(_CONFIG_KEY_FMT)
PERCENT_RE = _full(PERCENT_FMT)
_PORT_NAME_CHARS_RE = re.compile(r"^[-a-z0-9]+$")


def dns1123_label_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            msgs.append("must not contain dots")
        else:
            msgs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return msgs


def dns1123_subdomain_errors(value: str) -> list[str]:
    msgs = [_max_len(253)] if len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        msgs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return msgs


def dns1035_label_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _DNS1035_LABEL_RE.match(value):
        msgs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return msgs


def qualified_name_errors(value: str) -> list[str]:
    parts = value.split("/")
    msgs: list[str] = []
    if len(parts) > 2:
        name_msg = regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        return [f"a qualified name {name_msg} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            msgs.append("prefix part must be non-empty")
        else:
            msgs.extend(f"prefix part {m}" for m in dns1123_subdomain_errors(prefix))
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append(f"name part {_max_len(63)}")
    if not _QNAME_RE.match(name):
        name_msg = regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        msgs.append(f"name part {name_msg}")
    return msgs


def label_value_errors(value: str) -> list[str]:
    msgs = [_max_len(63)] if len(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        examples = ("MyValue", "my_value", "12345")
        msgs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, *examples))
    return msgs


def port_name_errors(value: str) -> list[str]:
    """IANA_SVC_NAME rules (apimachinery `IsValidPortName`)."""
    msgs = ["must be no more than 15 characters"] if len(value) > 15 else []
    if not _PORT_NAME_CHARS_RE.match(value):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        msgs.append("must contain at least one letter (a-z)")
    if "--" in value:
        msgs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        msgs.append("must not begin or end with a hyphen")
    return msgs


def config_key_errors(value: str) -> list[str]:
    msgs = [_max_len(253)] if len(value) > 253 else []
    if not _CONFIG_KEY_RE.match(value):
        examples = ("key.name", "KEY_NAME", "key-name")
        msgs.append(regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, *examples))
    if value == ".":
        msgs.append("must not be '.'")
    elif value == "..":
        msgs.append("must not be '..'")
    elif value.startswith(".."):
        msgs.append("must not start with '..'")
    return msgs


def _is_port_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def invalid_each(field: str, value: Any, msgs: Iterable[str]) -> Errors:
    return [FieldError.invalid(field, value, m) for m in msgs]


def check_port(field: str, value: Any) -> Errors:
    return [] if _is_port_number(value) else [FieldError.invalid(field, value, _PORT_RANGE_MSG)]


def check_non_negative(field: str, value: Any) -> Errors:
    if isinstance(value, int) and value < 0:
        return [FieldError.invalid(field, value, _NON_NEGATIVE_MSG)]
    return []


def check_one_of(field: str, value: Any, valid: list[str], *, required: bool = True) -> Errors:
    """Required when empty (if `required`), `Unsupported value` when not in `valid`."""
    if value in (None, ""):
        return [FieldError.required(field)] if required else []
    if value not in valid:
        return [FieldError.not_supported(field, value, sorted(valid))]
    return []


def check_ip(field: str, value: Any) -> Errors:
    if parse_ip(value) is None:
        return [FieldError.invalid(field, value, _IP_MSG)]
    return []


def check_non_special_ip(field: str, value: str) -> Errors:
    """Reject the unspecified and link-local ranges (upstream `validateNonSpecialIP`).

    Deliberate difference: upstream also refuses the loopback range, but tinykube's host
    network mode puts cluster IPs, pod IPs and external IPs in 127.0.0.0/8 (every 127.x
    address routes to `lo`), so loopback addresses are accepted here.
    """
    ip = parse_ip(value)
    if ip is None:
        return [FieldError.invalid(field, value, _IP_MSG)]
    if ip.is_unspecified:
        return [FieldError.invalid(field, value, f"may not be unspecified ({value})")]
    if ip.is_link_local:
        return [FieldError.invalid(
            field, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")]
    if ip.is_multicast and (ip in ipaddress.ip_network("224.0.0.0/24")
                            or ip in ipaddress.ip_network("ff02::/16")):
        return [FieldError.invalid(
            field, value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")]
    return []


def check_port_num_or_name(field: str, value: Any) -> Errors:
    if isinstance(value, str):
        return invalid_each(field, value, port_name_errors(value))
    return check_port(field, value)


PROTOCOLS = ["SCTP", "TCP", "UDP"]
