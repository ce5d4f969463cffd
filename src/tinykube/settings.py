"""Default addresses and sizes shared by the command line and the parts it starts.

This module imports nothing: `tinykube up` reads its option defaults from here before it
imports anything heavy, so that its child process can start at once (see `cluster`).
"""

DEFAULT_SERVICE_CIDR = "127.96.0.0/16"
DEFAULT_POD_CIDR = "127.244.0.0/16"
# `--network netns`: the ranges of a real cluster, routed only inside tinykube's namespaces
NETNS_SERVICE_CIDR = "10.96.0.0/12"
NETNS_POD_CIDR = "10.244.0.0/16"
# Watch events kept for resuming watches. Each holds a whole object, so this bounds memory;
# informers relist after a 410, and 5,000 covers any list-then-watch gap seen in practice.
DEFAULT_WATCH_HISTORY = 5_000
