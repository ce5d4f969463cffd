"""The scheme: every resource tinykube serves, with the names discovery advertises.

One `Resource` per (group, version, plural). Discovery, OpenAPI, routing and storage all read
this table, so a resource exists everywhere or nowhere. Legacy versions (`apps/v1beta1`,
`apps/v1beta2`) are separate entries that share their storage with `apps/v1`
(`storage_version`); `api.conversion` moves objects between them.

Verbs, short names and categories are those kube-apiserver advertises for the same resources.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclasses.dataclass(frozen=True)
class Subresource:
    name: str  # "status", "scale", "log"
    group: str  # response kind's group
    version: str
    kind: str
    verbs: tuple[str, ...] = STATUS_VERBS


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str  # "" for core
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    storage_version: str = ""  # version objects are stored in; "" means this one
    storage_group: str | None = None  # group objects are stored in; None means this one
    deprecated_warning: str = ""  # Warning header text for every request to this version
    stored: bool = True  # False: answered by `virtual`'s handler and never stored
    virtual: str = ""  # "review", "binding", "componentstatus": who answers an unstored kind
    not_run: bool = False  # stored and served, but no tinykube controller acts on it yet
    # Served from elsewhere than the store: "metrics" (read-only figures the API server
    # scrapes from the kubelets, as an aggregated metrics-server serves them).
    provider: str = ""
    singular_name: str | None = None  # what discovery advertises, if not the kind lowercased
    not_run_text: str = ""  # what the not_run warning says instead of the generic sentence
    # A custom resource: the `api.apiextensions.model.CustomKind` its CRD version describes
    # (schema, printer columns, scale paths); None for built-in kinds.
    custom: Any = dataclasses.field(default=None, compare=False, hash=False, repr=False)

    @property
    def singular(self) -> str:
        return self.kind.lower() if self.singular_name is None else self.singular_name

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def stored_version(self) -> str:
        return self.storage_version or self.version

    @property
    def stored_group(self) -> str:
        return self.group if self.storage_group is None else self.storage_group

    @property
    def stored_api_version(self) -> str:
        """The apiVersion objects of this resource are stored in (`apps/v1`, `v1`)."""
        group = self.stored_group
        return f"{group}/{self.stored_version}" if group else self.stored_version

    @property
    def converted(self) -> bool:
        """Whether objects are stored in another group-version and converted when served."""
        return bool(self.storage_version) or self.storage_group is not None

    @property
    def storage_key(self) -> str:
        """The key prefix shared by every version of this resource (`apps/statefulsets`);
        events.k8s.io Events share `core/events` with the core ones."""
        return f"{self.stored_group or 'core'}/{self.plural}"

    @property
    def qualified(self) -> str:
        """`statefulsets.apps`, or `services` in the core group (used in error messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def not_run_warning(self) -> str:
        """The Warning header text for writes of a kind nothing runs yet ("" if it is run)."""
        if not self.not_run:
            return ""
        return self.not_run_text or (f"tinykube stores {self.kind} objects but does not run "
                                     "them yet: no controller acts on them")

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None


def _status(group: str, version: str, kind: str) -> Subresource:
    return Subresource("status", group, version, kind)


_SCALE = Subresource("scale", "autoscaling", "v1", "Scale")


def _apps(version: str, warning: str = "") -> list[Resource]:
    storage = "" if version == "v1" else "v1"
    sts = Resource(
        "apps", version, "statefulsets", "StatefulSet", short_names=("sts",),
        categories=("all",),
        subresources=(_status("apps", version, "StatefulSet"), _SCALE),
        storage_version=storage, deprecated_warning=warning,
    )
    deploy = Resource(
        "apps", version, "deployments", "Deployment", short_names=("deploy",),
        categories=("all",),
        subresources=(_status("apps", version, "Deployment"), _SCALE),
        storage_version=storage, deprecated_warning=warning,
    )
    if version != "v1":
        return [deploy, sts]
    return [
        Resource("apps", "v1", "controllerrevisions", "ControllerRevision"),
        Resource(
            "apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",), categories=("all",),
            subresources=(_status("apps", "v1", "DaemonSet"),),
        ),
        deploy,
        Resource(
            "apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), categories=("all",),
            subresources=(_status("apps", "v1", "ReplicaSet"), _SCALE),
        ),
        sts,
    ]


def _legacy_warning(version: str) -> str:
    return (
        f"apps/{version} StatefulSet and Deployment were removed upstream in Kubernetes 1.16; "
        "tinykube still accepts them for old manifests, but use apps/v1 instead"
    )


READ_ONLY = ("get", "list")

CORE: list[Resource] = [
    # POST /api/v1/namespaces/N/bindings binds the pod named in the body, as pods/binding does.
    Resource("", "v1", "bindings", "Binding", verbs=("create",), stored=False,
             virtual="binding"),
    # Computed on each read from the components tinykube runs (apiserver/componentstatus.py).
    Resource("", "v1", "componentstatuses", "ComponentStatus", namespaced=False,
             short_names=("cs",), verbs=READ_ONLY, stored=False, virtual="componentstatus"),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Resource("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
    Resource("", "v1", "limitranges", "LimitRange", short_names=("limits",)),
    Resource(
        "", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        subresources=(_status("", "v1", "Namespace"),
                      Subresource("finalize", "", "v1", "Namespace", ("update",))),
    ),
    Resource(
        "", "v1", "nodes", "Node", namespaced=False, short_names=("no",),
        subresources=(_status("", "v1", "Node"),),
    ),
    Resource(
        "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
        subresources=(_status("", "v1", "PersistentVolumeClaim"),),
    ),
    Resource(
        "", "v1", "persistentvolumes", "PersistentVolume", namespaced=False,
        short_names=("pv",), subresources=(_status("", "v1", "PersistentVolume"),),
    ),
    Resource(
        "", "v1", "pods", "Pod", short_names=("po",), categories=("all",),
        subresources=(
            _status("", "v1", "Pod"),
            Subresource("attach", "", "v1", "PodAttachOptions", ("create", "get")),
            Subresource("binding", "", "v1", "Binding", ("create",)),
            Subresource("eviction", "policy", "v1", "Eviction", ("create",)),
            Subresource("exec", "", "v1", "PodExecOptions", ("create", "get")),
            Subresource("log", "", "v1", "Pod", ("get",)),
            Subresource("portforward", "", "v1", "PodPortForwardOptions", ("create", "get")),
        ),
    ),
    Resource("", "v1", "podtemplates", "PodTemplate"),
    Resource(
        "", "v1", "replicationcontrollers", "ReplicationController", short_names=("rc",),
        categories=("all",),
        subresources=(_status("", "v1", "ReplicationController"), _SCALE),
    ),
    Resource("", "v1", "resourcequotas", "ResourceQuota", short_names=("quota",),
             subresources=(_status("", "v1", "ResourceQuota"),)),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",),
             subresources=(Subresource("token", "authentication.k8s.io", "v1", "TokenRequest",
                                       ("create",)),)),
    Resource(
        "", "v1", "services", "Service", short_names=("svc",), categories=("all",),
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
        subresources=(_status("", "v1", "Service"),),
    ),
]

def _review(group: str, plural: str, kind: str, *, namespaced: bool = False) -> Resource:
    return Resource(group, "v1", plural, kind, namespaced=namespaced, verbs=("create",),
                    stored=False, virtual="review")


# What kubectl auth can-i [--list] and kubectl auth whoami ask, and what webhooks and
# aggregated servers ask of tokens and access (see apiserver/reviews.py).
REVIEWS: list[Resource] = [
    _review("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview"),
    _review("authentication.k8s.io", "tokenreviews", "TokenReview"),
    _review("authorization.k8s.io", "localsubjectaccessreviews", "LocalSubjectAccessReview",
            namespaced=True),
    _review("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    _review("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    _review("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
]


def _cluster(group: str, plural: str, kind: str, *, short_names: tuple[str, ...] = (),
             categories: tuple[str, ...] = (), subresources: tuple[Subresource, ...] = (),
             not_run: bool = False, not_run_text: str = "") -> Resource:
    """A cluster-scoped v1 resource of `group`."""
    return Resource(group, "v1", plural, kind, namespaced=False, short_names=short_names,
                    categories=categories, subresources=subresources, not_run=not_run,
                    not_run_text=not_run_text)


_ADMISSION = "admissionregistration.k8s.io"
_EXTENSIONS = ("api-extensions",)
# Stored and served so manifests and operators' installers work; no webhook is called and no
# policy is evaluated yet (the not_run warning says so on every write).
def _unused(kind: str, what: str) -> str:
    return f"tinykube stores {kind} objects but does not {what} yet"


ADMISSION: list[Resource] = [
    _cluster(_ADMISSION, "mutatingwebhookconfigurations", "MutatingWebhookConfiguration",
             categories=_EXTENSIONS),  # called by apiserver/webhooks.py
    _cluster(_ADMISSION, "validatingadmissionpolicies", "ValidatingAdmissionPolicy",
             categories=_EXTENSIONS,
             subresources=(_status(_ADMISSION, "v1", "ValidatingAdmissionPolicy"),)),
    _cluster(_ADMISSION, "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding",
             categories=_EXTENSIONS),
    _cluster(_ADMISSION, "validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
             categories=_EXTENSIONS),  # called by apiserver/webhooks.py
]

# admissionregistration.k8s.io/v1alpha1 of 1.32: served only when the API server is started with
# `--feature-gates MutatingAdmissionPolicy=true --runtime-config
# admissionregistration.k8s.io/v1alpha1=true` (`serve_mutating_policies`), as kube-apiserver
# serves them; the policies are applied by apiserver/mutating_policies.py.
MUTATING_POLICIES: list[Resource] = [
    Resource(_ADMISSION, "v1alpha1", "mutatingadmissionpolicies", "MutatingAdmissionPolicy",
             namespaced=False, categories=_EXTENSIONS),
    Resource(_ADMISSION, "v1alpha1", "mutatingadmissionpolicybindings",
             "MutatingAdmissionPolicyBinding", namespaced=False, categories=_EXTENSIONS),
]

# The local APIServices (one per served group-version) are created at startup
# (apiserver/bootstrap.py), as kube-apiserver's autoregister controller does.
API_REGISTRATION: list[Resource] = [
    _cluster("apiregistration.k8s.io", "apiservices", "APIService", categories=_EXTENSIONS,
             subresources=(_status("apiregistration.k8s.io", "v1", "APIService"),)),
]

# CustomResourceDefinitions add (and remove) rows of their own at runtime (`register`).
API_EXTENSIONS: list[Resource] = [
    _cluster("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition",
             short_names=("crd", "crds"), categories=_EXTENSIONS,
             subresources=(_status("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),)),
]

# v2 is the storage version; v1 (targetCPUUtilizationPercentage) is converted (api.conversion).
AUTOSCALING: list[Resource] = [
    Resource("autoscaling", version, "horizontalpodautoscalers", "HorizontalPodAutoscaler",
             short_names=("hpa",), categories=("all",),
             subresources=(_status("autoscaling", version, "HorizontalPodAutoscaler"),),
             storage_version="" if version == "v2" else "v2")
    for version in ("v2", "v1")
]

CERTIFICATES: list[Resource] = [
    _cluster("certificates.k8s.io", "certificatesigningrequests", "CertificateSigningRequest",
             short_names=("csr",),
             subresources=(
                 Subresource("approval", "certificates.k8s.io", "v1",
                             "CertificateSigningRequest"),
                 _status("certificates.k8s.io", "v1", "CertificateSigningRequest"),
             )),
]

# Same objects as core Events (storage `core/events`), in the events.k8s.io/v1 shape.
EVENTS: list[Resource] = [
    Resource("events.k8s.io", "v1", "events", "Event", short_names=("ev",),
             storage_group="", storage_version="v1"),
]

_FLOWCONTROL = "flowcontrol.apiserver.k8s.io"
# kube's mandatory objects are created at startup; tinykube does not queue requests by them.
FLOWCONTROL: list[Resource] = [
    _cluster(_FLOWCONTROL, "flowschemas", "FlowSchema",
             subresources=(_status(_FLOWCONTROL, "v1", "FlowSchema"),)),
    _cluster(_FLOWCONTROL, "prioritylevelconfigurations", "PriorityLevelConfiguration",
             subresources=(_status(_FLOWCONTROL, "v1", "PriorityLevelConfiguration"),)),
]

POLICY: list[Resource] = [
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget",
             short_names=("pdb",), subresources=(_status("policy", "v1", "PodDisruptionBudget"),)),
]

_RBAC = "rbac.authorization.k8s.io"
# Enforced on every request by apiserver.rbac.
RBAC: list[Resource] = [
    _cluster(_RBAC, "clusterrolebindings", "ClusterRoleBinding"),
    _cluster(_RBAC, "clusterroles", "ClusterRole"),
    Resource(_RBAC, "v1", "rolebindings", "RoleBinding"),
    Resource(_RBAC, "v1", "roles", "Role"),
]

# system-cluster-critical and system-node-critical are created at startup.
SCHEDULING: list[Resource] = [
    _cluster("scheduling.k8s.io", "priorityclasses", "PriorityClass", short_names=("pc",)),
]

_STORAGE = "storage.k8s.io"
# What CSI drivers and their sidecars write; tinykube runs no CSI driver.
STORAGE: list[Resource] = [
    _cluster(_STORAGE, "csidrivers", "CSIDriver"),
    _cluster(_STORAGE, "csinodes", "CSINode"),
    Resource(_STORAGE, "v1", "csistoragecapacities", "CSIStorageCapacity"),
    _cluster(_STORAGE, "volumeattachments", "VolumeAttachment",
             subresources=(_status(_STORAGE, "v1", "VolumeAttachment"),)),
]

# batch/v1 and networking.k8s.io/v1: served so manifests (and kubectl's default prune list)
# work; the Job, CronJob and TTL-after-finished controllers run them; Ingresses need an
# ingress controller.
# NetworkPolicies are enforced in --network netns.
BATCH: list[Resource] = [
    Resource("batch", "v1", "cronjobs", "CronJob", short_names=("cj",), categories=("all",),
             subresources=(_status("batch", "v1", "CronJob"),)),
    Resource("batch", "v1", "jobs", "Job", categories=("all",),
             subresources=(_status("batch", "v1", "Job"),)),
]

# metrics.k8s.io/v1beta1, as metrics-server serves it behind its APIService (get and list
# only, no singular names); figures from the kubelets' /metrics/resource (api/resourcemetrics).
METRICS: list[Resource] = [
    Resource("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", namespaced=False,
             verbs=("get", "list"), stored=False, provider="metrics", singular_name=""),
    Resource("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", verbs=("get", "list"),
             stored=False, provider="metrics", singular_name=""),
]

GROUPS: list[Resource] = [
    *_apps("v1"),
    *_apps("v1beta2", _legacy_warning("v1beta2")),
    *_apps("v1beta1", _legacy_warning("v1beta1")),
    *BATCH,
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",),
             subresources=(_status("networking.k8s.io", "v1", "Ingress"),)),
    # Enforced by the nftables proxy in --network netns (proxy/netpol.py); stored only in
    # host mode, where pods share one network namespace.
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy",
             short_names=("netpol",)),
    Resource("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", namespaced=False),
    # Provisioned and bound by controllers/volumes.py (the default class `standard` is made at
    # start-up, as kind's local-path-provisioner installs it).
    Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False,
             short_names=("sc",)),
    *REVIEWS,
    *METRICS,
    *ADMISSION,
    *API_REGISTRATION,
    *API_EXTENSIONS,
    *AUTOSCALING,
    *CERTIFICATES,
    *EVENTS,
    *FLOWCONTROL,
    *POLICY,
    *RBAC,
    *SCHEDULING,
    *STORAGE,
]

ALL: list[Resource] = CORE + GROUPS

# Preferred version first, as discovery lists them.
GROUP_VERSIONS: dict[str, list[str]] = {}
_BY_PATH: dict[tuple[str, str, str], Resource] = {}
_BY_KIND: dict[tuple[str, str, str], Resource] = {}
# Called after every change of the table (caches of discovery and OpenAPI documents).
_LISTENERS: list[Callable[[], None]] = []
_GENERATION = [0]  # one more at every change; documents built in a thread are keyed by it


def _index() -> None:
    GROUP_VERSIONS.clear()
    for res in ALL:
        versions = GROUP_VERSIONS.setdefault(res.group, [])
        if res.version not in versions:
            versions.append(res.version)
    _BY_PATH.clear()
    _BY_PATH.update({(r.group, r.version, r.plural): r for r in ALL})
    _BY_KIND.clear()
    _BY_KIND.update({(r.group, r.version, r.kind): r for r in ALL})


_index()


def generation() -> int:
    """How many times the table has changed (a cache key for documents built off the loop)."""
    return _GENERATION[0]


def subscribe(listener: Callable[[], None]) -> None:
    """Call `listener` after each `register`/`unregister` (to drop cached documents)."""
    _LISTENERS.append(listener)


def register(group: str, plural: str, rows: Iterable[Resource]) -> None:
    """Serve `rows` as the versions of `plural.group`, replacing what was served for it before
    (a CustomResourceDefinition's served versions, as its controllers establish them)."""
    rows = list(rows)
    ALL[:] = [r for r in ALL if (r.group, r.plural) != (group, plural) or r.custom is None]
    ALL.extend(rows)
    _index()
    _GENERATION[0] += 1
    for listener in _LISTENERS:
        listener()


def unregister(group: str, plural: str) -> None:
    """Stop serving the custom resource `plural.group` (built-in rows are never removed)."""
    register(group, plural, ())


def serve_mutating_policies(served: bool) -> None:
    """Serve (or stop serving) `MUTATING_POLICIES`: what the MutatingAdmissionPolicy feature
    gate and the admissionregistration.k8s.io/v1alpha1 runtime-config turn on."""
    rows = set(MUTATING_POLICIES)
    ALL[:] = [r for r in ALL if r not in rows] + (list(MUTATING_POLICIES) if served else [])
    _index()
    _GENERATION[0] += 1
    for listener in _LISTENERS:
        listener()


def custom_resources() -> list[Resource]:
    return [r for r in ALL if r.custom is not None]


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def must(group: str, version: str, plural: str) -> Resource:
    """The resource at (group, version, plural), which the caller knows is registered."""
    res = lookup(group, version, plural)
    if res is None:
        raise LookupError(f"resource {group}/{version}/{plural} is not registered")
    return res


def by_kind(group: str, version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((group, version, kind))


def by_api_version(api_version: str, kind: str) -> Resource | None:
    group, _, version = api_version.rpartition("/")
    return by_kind(group, version, kind)


def storage_resource(resource: Resource) -> Resource:
    """The entry whose version objects of `resource` are stored in."""
    if not resource.converted:
        return resource
    stored = lookup(resource.stored_group, resource.stored_version, resource.plural)
    assert stored is not None
    return stored


def preferred(resources: Iterable[Resource] = ALL) -> list[Resource]:
    """Stored resources of each group's preferred version only (one per storage key)."""
    return [r for r in resources if not r.converted and r.stored]
