"""tinykube.proxy: the service proxy (kube-proxy's userspace mode; nftables in netns mode).

`model` (Services + EndpointSlices -> forwarding table, pure), `syncer` (informers, debounced
resync, diff), `backend` (the Backend protocol, BindError, FakeBackend), `userspace` with `tcp`,
`udp` and `picker` (the asyncio forwarder), `app` (`start_proxy`, `run_proxy`). In
`--network netns`: `ports` (service ports per node, pure), `nftables` (the service table),
`netpol` (the NetworkPolicy table), `nftproxy` (applies both in every node namespace).
"""
