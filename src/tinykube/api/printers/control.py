"""Printers for cluster configuration objects: RBAC bindings, CertificateSigningRequest,
admission configuration, APIService, API priority and fairness, PriorityClass, IngressClass and
the CSI storage kinds.

As `printers.go` (and kube-aggregator's APIService table): a binding shows its role as
`Kind/name` and, wide, its subjects split into users, groups and `namespace:name` service
accounts; a CSR its requestor, requested duration and `Approved`/`Denied`/`Pending` (plus
`,Failed`, `,Issued`); an APIService `Local` or the `namespace/name` of its service and
whether it is Available. Role and ClusterRole have no printer upstream (NAME / CREATED AT).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tinykube.api import quantity
from tinykube.api.printers.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    NONE,
    UNSET,
    Cell,
    Column,
    Printer,
    age_of,
    as_dict,
    as_int,
    as_list,
    format_label_selector,
    get_path,
    name_of,
    wide,
)
from tinykube.api.printers.duration import human_duration


def _subjects(binding: Mapping[str, Any]) -> list[Cell]:
    users, groups, accounts = [], [], []
    for subject in as_list(binding.get("subjects")):
        subject = as_dict(subject)
        kind, name = subject.get("kind"), str(subject.get("name") or "")
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            accounts.append(f"{subject.get('namespace') or ''}:{name}")
    return [", ".join(users), ", ".join(groups), ", ".join(accounts)]


def _binding_cells(binding: Mapping[str, Any], now: datetime) -> list[Cell]:
    ref = as_dict(binding.get("roleRef"))
    return [name_of(binding), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            age_of(binding, now), *_subjects(binding)]


def _binding_printer(kind: str) -> Printer:
    subject = kind[0].lower() + kind[1:]
    return Printer((
        NAME_COLUMN, Column("Role", "RoleRef can reference a Role in the current namespace or a "
                                    "ClusterRole in the global namespace."),
        AGE_COLUMN, wide("Users", f"Users in the {subject}"),
        wide("Groups", f"Groups in the {subject}"),
        wide("ServiceAccounts", f"ServiceAccounts in the {subject}"),
    ), _binding_cells)


def csr_condition(csr: Mapping[str, Any]) -> str:
    types = {as_dict(c).get("type") for c in as_list(get_path(csr, "status", "conditions"))}
    status = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        status += ",Failed"
    if get_path(csr, "status", "certificate"):
        status += ",Issued"
    return status


def _csr_cells(csr: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(csr.get("spec"))
    seconds = spec.get("expirationSeconds")
    duration = human_duration(timedelta(seconds=as_int(seconds))) if seconds is not None \
        else NONE
    return [name_of(csr), age_of(csr, now), str(spec.get("signerName") or "") or NONE,
            str(spec.get("username") or ""), duration, csr_condition(csr)]


def _webhook_cells(config: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(config), len(as_list(config.get("webhooks"))), age_of(config, now)]


def _policy_cells(policy: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(policy.get("spec"))
    param = spec.get("paramKind")
    param_kind = UNSET if not isinstance(param, Mapping) else \
        f"{param.get('apiVersion', '')}/{param.get('kind', '')}"
    return [name_of(policy), len(as_list(spec.get("validations"))), param_kind,
            age_of(policy, now)]


def _mutating_policy_cells(policy: Mapping[str, Any], now: datetime) -> list[Cell]:
    cells = _policy_cells(policy, now)
    cells[1] = len(as_list(as_dict(policy.get("spec")).get("mutations")))
    return cells


def _policy_binding_cells(binding: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(binding.get("spec"))
    ref, param = spec.get("paramRef"), UNSET
    if isinstance(ref, Mapping):
        if ref.get("name"):
            param = f"{ref.get('namespace') or '*'}/{ref['name']}"
        elif ref.get("selector") is not None:
            param = format_label_selector(ref["selector"])
    return [name_of(binding), str(spec.get("policyName") or ""), param, age_of(binding, now)]


def _apiservice_cells(service: Mapping[str, Any], now: datetime) -> list[Cell]:
    ref = get_path(service, "spec", "service")
    where = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if isinstance(ref, Mapping) \
        else "Local"
    available = "Unknown"
    for condition in as_list(get_path(service, "status", "conditions")):
        condition = as_dict(condition)
        if condition.get("type") == "Available":
            status, reason = str(condition.get("status") or ""), condition.get("reason")
            available = f"{status} ({reason})" if status != "True" and reason else status
            break
    return [name_of(service), where, available, age_of(service, now)]


def _flow_schema_cells(schema: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(schema.get("spec"))
    method = get_path(spec, "distinguisherMethod", "type")
    dangling = "?"
    for condition in as_list(get_path(schema, "status", "conditions")):
        if as_dict(condition).get("type") == "Dangling":
            dangling = str(as_dict(condition).get("status") or "")
            break
    return [name_of(schema), str(get_path(spec, "priorityLevelConfiguration", "name") or ""),
            as_int(spec.get("matchingPrecedence")), str(method) if method else NONE,
            age_of(schema, now), dangling]


def _priority_level_cells(level: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(level.get("spec"))
    cells: list[Cell] = [NONE, NONE, NONE, NONE]
    limited = spec.get("limited")
    if isinstance(limited, Mapping):
        cells[0] = as_int(limited.get("nominalConcurrencyShares"))
        queuing = get_path(limited, "limitResponse", "queuing")
        if isinstance(queuing, Mapping):
            cells[1:] = [as_int(queuing.get(f)) for f in ("queues", "handSize",
                                                           "queueLengthLimit")]
    return [name_of(level), str(spec.get("type") or ""), *cells, age_of(level, now)]


def _priority_class_cells(pc: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(pc), as_int(pc.get("value")), pc.get("globalDefault") is True,
            age_of(pc, now), str(pc.get("preemptionPolicy") or "")]


def _ingress_class_cells(ic: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(ic.get("spec"))
    params, parameters = spec.get("parameters"), NONE
    if isinstance(params, Mapping):
        parameters = str(params.get("kind") or "")
        if params.get("apiGroup"):
            parameters += f".{params['apiGroup']}"
        parameters += f"/{params.get('name', '')}"
    return [name_of(ic), str(spec.get("controller") or ""), parameters, age_of(ic, now)]


def _flag(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _csi_driver_cells(driver: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(driver.get("spec"))
    tokens = spec.get("tokenRequests")
    audiences = UNSET if tokens is None else ",".join(
        str(as_dict(t).get("audience") or "") for t in as_list(tokens))
    modes = ",".join(str(m) for m in as_list(spec.get("volumeLifecycleModes"))) or NONE
    return [name_of(driver), _flag(spec.get("attachRequired"), True),
            _flag(spec.get("podInfoOnMount"), False), _flag(spec.get("storageCapacity"), False),
            audiences, _flag(spec.get("requiresRepublish"), False), modes, age_of(driver, now)]


def _csi_node_cells(node: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [name_of(node), len(as_list(get_path(node, "spec", "drivers"))), age_of(node, now)]


def _attachment_cells(va: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = as_dict(va.get("spec"))
    return [name_of(va), str(spec.get("attacher") or ""),
            str(get_path(spec, "source", "persistentVolumeName") or ""),
            str(spec.get("nodeName") or ""), get_path(va, "status", "attached") is True,
            age_of(va, now)]


def _capacity_cells(capacity: Mapping[str, Any], now: datetime) -> list[Cell]:
    value = capacity.get("capacity")
    return [name_of(capacity), str(capacity.get("storageClassName") or ""),
            UNSET if value is None else quantity.text(value) or str(value)]


_WEBHOOKS = Printer((
    NAME_COLUMN,
    Column("Webhooks", "Webhooks indicates the number of webhooks registered in this "
                       "configuration", type="integer"),
    AGE_COLUMN,
), _webhook_cells)

# Both policy bindings print alike (kube's two printers have the same columns).
_POLICY_BINDING_COLUMNS = (
    NAME_COLUMN,
    Column("PolicyName", "PolicyName indicates the policy definition which the policy "
                         "binding binded to"),
    Column("ParamRef", "ParamRef indicates the param resource which sets the configration "
                       "param"),
    AGE_COLUMN,
)

CONTROL_PRINTERS: dict[str, Printer] = {
    "RoleBinding": _binding_printer("RoleBinding"),
    "ClusterRoleBinding": _binding_printer("ClusterRoleBinding"),
    "CertificateSigningRequest": Printer((
        NAME_COLUMN, AGE_COLUMN,
        Column("SignerName", "signerName indicates the requested signer."),
        Column("Requestor", "username contains the name of the user that created the CSR."),
        Column("RequestedDuration", "expirationSeconds is the requested duration of validity "
                                    "of the issued certificate."),
        Column("Condition", "conditions applied to the request."),
    ), _csr_cells),
    "MutatingWebhookConfiguration": _WEBHOOKS,
    "ValidatingWebhookConfiguration": _WEBHOOKS,
    "ValidatingAdmissionPolicy": Printer((
        NAME_COLUMN,
        Column("Validations", "Validations indicates the number of validation rules defined "
                              "in this configuration", type="integer"),
        Column("ParamKind", "ParamKind specifies the kind of resources used to parameterize "
                            "this policy"),
        AGE_COLUMN,
    ), _policy_cells),
    "ValidatingAdmissionPolicyBinding": Printer(_POLICY_BINDING_COLUMNS, _policy_binding_cells),
    "MutatingAdmissionPolicy": Printer((
        NAME_COLUMN,
        Column("Mutations", "Mutation indicates the number of mutations rules defined in this "
                            "configuration", type="integer"),
        Column("ParamKind", "ParamKind specifies the kind of resources used to parameterize "
                            "this policy"),
        AGE_COLUMN,
    ), _mutating_policy_cells),
    "MutatingAdmissionPolicyBinding": Printer(_POLICY_BINDING_COLUMNS, _policy_binding_cells),
    "APIService": Printer((
        NAME_COLUMN,
        Column("Service", "The reference to the service that hosts this API endpoint."),
        Column("Available", "Whether this service is available."),
        AGE_COLUMN,
    ), _apiservice_cells),
    "FlowSchema": Printer((
        NAME_COLUMN,
        Column("PriorityLevel", "`name` is the name of the priority level configuration being "
                                "referenced"),
        Column("MatchingPrecedence", "matchingPrecedence is used to choose among the "
                                     "FlowSchemas that match a given request."),
        Column("DistinguisherMethod", "distinguisherMethod defines how to compute the flow "
                                      "distinguisher for requests that match this schema."),
        AGE_COLUMN,
        Column("MissingPL", "references a broken or non-existent PriorityLevelConfiguration"),
    ), _flow_schema_cells),
    "PriorityLevelConfiguration": Printer((
        NAME_COLUMN,
        Column("Type", "`type` indicates whether this priority level is subject to limitation "
                       "on request execution."),
        Column("NominalConcurrencyShares", "`nominalConcurrencyShares` (NCS) contributes to "
                                           "the computation of the NominalConcurrencyLimit."),
        Column("Queues", "`queues` is the number of queues for this priority level."),
        Column("HandSize", "`handSize` is a small positive number that configures the "
                           "shuffle sharding of requests into queues."),
        Column("QueueLengthLimit", "`queueLengthLimit` is the maximum number of requests "
                                   "allowed to be waiting in a given queue."),
        AGE_COLUMN,
    ), _priority_level_cells),
    "PriorityClass": Printer((
        NAME_COLUMN,
        Column("Value", "value represents the integer value of this priority class.",
               type="integer"),
        Column("Global-Default", "globalDefault specifies whether this PriorityClass should be "
                                 "considered as the default priority for pods that do not have "
                                 "any priority class.", type="boolean"),
        AGE_COLUMN,
        Column("PreemptionPolicy", "preemptionPolicy is the Policy for preempting pods with "
                                   "lower priority."),
    ), _priority_class_cells),
    "IngressClass": Printer((
        NAME_COLUMN,
        Column("Controller", "Controller that is responsible for handling this class"),
        Column("Parameters", "A reference to a resource with additional parameters"),
        AGE_COLUMN,
    ), _ingress_class_cells),
    "CSIDriver": Printer((
        NAME_COLUMN,
        Column("AttachRequired", "attachRequired indicates this CSI volume driver requires an "
                                 "attach operation.", type="boolean"),
        Column("PodInfoOnMount", "podInfoOnMount indicates this CSI volume driver requires "
                                 "additional pod information during mount operations.",
               type="boolean"),
        Column("StorageCapacity", "storageCapacity indicates that the CSI volume driver wants "
                                  "pod scheduling to consider the storage capacity.",
               type="boolean"),
        Column("TokenRequests", "tokenRequests indicates the CSI driver needs pods' service "
                                "account tokens it is mounting volume for."),
        Column("RequiresRepublish", "requiresRepublish indicates the CSI driver wants "
                                    "`NodePublishVolume` being periodically called.",
               type="boolean"),
        Column("Modes", "volumeLifecycleModes defines what kind of volumes this CSI volume "
                        "driver supports."),
        AGE_COLUMN,
    ), _csi_driver_cells),
    "CSINode": Printer((
        NAME_COLUMN,
        Column("Drivers", "Drivers indicates the number of CSI drivers registered on the node",
               type="integer"),
        AGE_COLUMN,
    ), _csi_node_cells),
    "VolumeAttachment": Printer((
        NAME_COLUMN,
        Column("Attacher", "attacher indicates the name of the volume driver that MUST handle "
                           "this request.", format="name"),
        Column("PV", "persistentVolumeName represents the name of the persistent volume to "
                     "attach."),
        Column("Node", "nodeName represents the node that the volume should be attached to."),
        Column("Attached", "attached indicates the volume is successfully attached.",
               type="boolean"),
        AGE_COLUMN,
    ), _attachment_cells),
    "CSIStorageCapacity": Printer((
        NAME_COLUMN,
        Column("StorageClassName", "storageClassName represents the name of the StorageClass "
                                   "that the reported capacity applies to."),
        Column("Capacity", "capacity is the value reported by the CSI driver in its "
                           "GetCapacityResponse for a GetCapacityRequest with topology and "
                           "parameters that match the previous fields."),
    ), _capacity_cells),
}
