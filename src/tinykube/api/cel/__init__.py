"""CEL (Common Expression Language) as kube-apiserver uses it, on the `cel` package
(PyPI `common-expression-language`, Rust's cel-rust behind Python bindings).

- `engine`: compiling an expression against the variables an environment declares (syntax
  errors and undeclared names are refused at compile time, worded as cel-go words them) and
  evaluating it within a cost bound, with runtime errors worded as cel-go's;
- `library`: kube's CEL libraries (lists, strings, regex, URLs, quantities, IPs and CIDRs) as
  functions the engine registers on every program;
- `parser`, `checker`, `celtypes`: cel-go's static type check, which cel-rust lacks (an AST
  with source offsets, the CEL types of kube's schemas, the overloads of the standard library
  and of kube's, cel-go's error texts), run when a CRD or a policy is written; evaluation
  stays on cel-rust.

Why this library: README.md, "Dependencies", has the comparison with `cel-python` (correctness
on kube's cases and speed); in short, both lack cel-go's static type checker (tinykube has its
own) and the `.?` optional syntax, and `cel-python` was 20-1000x slower per evaluation.
"""
