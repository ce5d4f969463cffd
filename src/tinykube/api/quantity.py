"""Resource quantities (`resource.Quantity`): `500m`, `2`, `1Gi`, `1e3`, parsed and printed.

`parse` turns a quantity string into an exact `Fraction` and the format its suffix implies
(binary `Ki`..`Ei`, decimal `n`..`E`, or an `e`/`E` exponent), or None when the string is not a
quantity. Values are rounded up to nano units, as `ParseQuantity` does.

`canonical` prints a value the way `Quantity.String()` does, which is what kube-apiserver puts in
its messages (`Invalid value: "2": must be less than or equal to cpu limit of 1`): the largest
suffix that keeps the number an integer, in the format the value was written in, where binary
falls back to decimal for values under 1024 or that are not whole (`0.5Gi` prints `512Mi`,
`1.5` prints `1500m`, `2000m` prints `2`).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

BINARY, DECIMAL, EXPONENT = "BinarySI", "DecimalSI", "DecimalExponent"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_SUFFIX = {bits: suffix for suffix, bits in _BINARY.items()}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_NANO = Fraction(1, 10**9)


def parse(text: object) -> tuple[Fraction, str] | None:
    """The exact value and the format of a quantity (an int or float is taken as written)."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        text = str(text)
    if not isinstance(text, str):
        return None
    match = _QUANTITY.match(text.strip())
    if match is None:
        return None
    number, suffix = Fraction(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        value, form = number * 2 ** _BINARY[suffix], BINARY
    elif suffix in _DECIMAL:
        value, form = number * Fraction(10) ** _DECIMAL[suffix], DECIMAL
    else:
        value, form = number * Fraction(10) ** int(suffix[1:]), EXPONENT
    return _round_up_to_nano(value), form


def _round_up_to_nano(value: Fraction) -> Fraction:
    nanos = value / _NANO
    return Fraction(math.ceil(nanos)) * _NANO if nanos.denominator != 1 else value


def canonical(value: Fraction, form: str) -> str:
    """`Quantity.String()` of `value` written in `form`."""
    if form == BINARY and (abs(value) < 1024 or value.denominator != 1):
        form = DECIMAL
    if form == BINARY:
        return _binary(int(value))
    return _decimal(value, form)


def _binary(value: int) -> str:
    bits = 0
    while value and value % 1024 == 0 and bits < 60:
        value //= 1024
        bits += 10
    return f"{value}{_BINARY_SUFFIX.get(bits, '')}"


def _decimal(value: Fraction, form: str) -> str:
    if not value:
        return "0"
    exponent = -9
    mantissa = value / _NANO  # an integer: values are whole nanos
    while mantissa and mantissa % 1000 == 0 and exponent < 18:
        mantissa /= 1000
        exponent += 3
    if form == EXPONENT:
        return f"{int(mantissa)}e{exponent}" if exponent else str(int(mantissa))
    return f"{int(mantissa)}{_DECIMAL_SUFFIX[exponent]}"


def text(value: object) -> str | None:
    """The canonical form of a quantity string, or None when it is not one."""
    parsed = parse(value)
    return None if parsed is None else canonical(*parsed)
