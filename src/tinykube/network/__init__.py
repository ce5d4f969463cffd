"""The pod network of `--network netns`: namespaces for nodes and pods, joined by bridges.

`plan` says what the network is (names and addresses, pure); `netns` makes it (iproute2 and
setns(2)). The node agent attaches pods, the cluster DNS listens in every node namespace; none
of it touches the host's own namespace.
"""
