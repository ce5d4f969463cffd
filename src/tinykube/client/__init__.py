"""tinykube.client: a small Kubernetes client ("client-go in miniature") for any API server.

* `config`: kubeconfig / in-cluster loading -> `ClientConfig` (+ `ssl.SSLContext`).
* `rest`: `RESTClient`, async CRUD + list + watch over aiohttp; Status bodies -> `api.errors`.
* `informer`: `Informer` (list + watch into an `Indexer` cache, relist on 410, handlers).
* `workqueue`: `WorkQueue` (client-go dirty/processing semantics, delays, backoff) and
  `run_workers`.

Only standard Kubernetes wire behaviour is used, so everything here also works against a real
kube-apiserver. Import the submodules directly; this package re-exports nothing.
"""
