"""CustomResourceDefinitions (`apiextensions.k8s.io/v1`): the pure parts, no I/O.

kube's apiextensions-apiserver, in modules of one job each:

- `validation`: the CRD object itself (names, versions, scope, subresources, printer
  columns), worded as `pkg/apis/apiextensions/validation`;
- `structural`: the structural-schema rules a CRD's `openAPIV3Schema` must follow
  (`pkg/apiserver/schema/validation.go`);
- `schema`: what a custom resource goes through against that schema: defaulting, pruning of
  unknown fields, and value validation with kube-openapi's messages;
- `names`: the naming and establishing controllers' decisions (accepted names, conflicts,
  the `NamesAccepted` / `Established` / `Terminating` conditions), as pure functions;
- `model`: a CRD turned into `api.resources.Resource` rows (one per served version) that the
  registry, discovery, OpenAPI and printers serve like any built-in row, with the
  `CustomKind` each row carries;
- `printing`: the Table of `additionalPrinterColumns` (JSONPath cells).
- `rules`: CEL validation rules (`x-kubernetes-validations`), on `tinykube.api.cel`.

Not here: the calls of webhook conversion (I/O: `apiserver.crd_conversion`; `model` only
says which rows need it).
"""
