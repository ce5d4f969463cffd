"""Which state a list reads: kube-apiserver's `resourceVersion` / `resourceVersionMatch` rules.

A list names the state it wants with `resourceVersion` (RV) and `resourceVersionMatch`, read
as kube-apiserver reads them (apimachinery's ValidateListOptions, then the storage layer's
list semantics, KEP-1904/KEP-3157):

| resourceVersionMatch | resourceVersion | limit   | reads                                |
|----------------------|-----------------|---------|--------------------------------------|
| unset                | unset           | any     | MOST_RECENT (the current state)      |
| unset or NotOlderThan| "0"             | any     | ANY (the cache: here, current state) |
| unset                | N               | unset   | NOT_OLDER_THAN N                     |
| unset                | N               | set     | EXACT N (the legacy exact match)     |
| NotOlderThan         | N               | any     | NOT_OLDER_THAN N                     |
| Exact                | N               | any     | EXACT N                              |

NOT_OLDER_THAN a version the server has not reached waits (up to 3 s in kube-apiserver) and
then fails with 504 "Too large resource version"; EXACT is the state at N rebuilt from the
watch history (410 once N has left it). A `continue` token carries its own version, so a
resourceVersion beside it is refused, as are the option combinations apimachinery forbids (422
Invalid for the ListOptions, with its field errors).
"""

from __future__ import annotations

import dataclasses
import enum

from aiohttp import web

from tinykube.api import errors
from tinykube.apiserver.params import resource_version_param

EXACT_MATCH = "Exact"
NOT_OLDER_THAN_MATCH = "NotOlderThan"


class Consistency(enum.Enum):
    MOST_RECENT = "MostRecent"
    ANY = "Any"
    NOT_OLDER_THAN = "NotOlderThan"
    EXACT = "Exact"
    CONTINUE = "Continue"  # the token's own version (see handlers._decode_continue)


@dataclasses.dataclass(frozen=True)
class ListRead:
    consistency: Consistency
    rv: int = 0  # the version NOT_OLDER_THAN and EXACT refer to


def list_read(request: web.Request, limit: int) -> ListRead:
    """The state a list request asks for; 422 or 400 worded as kube-apiserver words them."""
    rv_text = request.query.get("resourceVersion", "")
    match = request.query.get("resourceVersionMatch", "")
    token = request.query.get("continue", "")
    _validate(request, rv_text, match, token)
    rv = resource_version_param(request) or 0
    if token:
        if rv_text not in ("", "0"):
            raise errors.BadRequest("specifying resource version is not allowed when using "
                                    "continue")
        return ListRead(Consistency.CONTINUE)
    if match == EXACT_MATCH or (not match and limit > 0 and rv > 0):
        return ListRead(Consistency.EXACT, rv)
    if not rv_text:
        return ListRead(Consistency.MOST_RECENT)
    if rv == 0:
        return ListRead(Consistency.ANY)
    return ListRead(Consistency.NOT_OLDER_THAN, rv)


def _validate(request: web.Request, rv_text: str, match: str, token: str) -> None:
    """apimachinery's ValidateListOptions for a list (not a watch)."""
    problems = []
    field = "resourceVersionMatch"
    if match:
        if not rv_text:
            problems.append(errors.FieldError.forbidden(
                field, "resourceVersionMatch is forbidden unless resourceVersion is provided"))
        if token:
            problems.append(errors.FieldError.forbidden(
                field, "resourceVersionMatch is forbidden when continue is provided"))
        if match not in (EXACT_MATCH, NOT_OLDER_THAN_MATCH):
            problems.append(errors.FieldError.not_supported(
                field, match, [EXACT_MATCH, NOT_OLDER_THAN_MATCH, ""]))
        if match == EXACT_MATCH and rv_text == "0":
            problems.append(errors.FieldError.forbidden(
                field, 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    if "sendInitialEvents" in request.query:
        problems.append(errors.FieldError.forbidden(
            "sendInitialEvents", "sendInitialEvents is forbidden for list"))
    if problems:
        raise errors.Invalid("ListOptions", "meta.k8s.io", "", problems)
