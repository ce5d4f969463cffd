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
# ... and at most this many bytes of encoded objects (a history event costs about twice its
# encoded size in memory: the object and its cached JSON). It bounds big objects only: 5,000
# events of the usual 1-6 KiB objects stay below it.
DEFAULT_WATCH_HISTORY_BYTES = 32 * 1024 * 1024
# A watcher whose client does not read falls behind: more than this many bytes of encoded live
# events queued for longer than WATCH_DRAIN_GRACE seconds (or twice as many at any moment), and
# the watch ends, as kube-apiserver ends a watcher whose buffer stays full; the client re-watches
# from the last version it saw. Twice it fits in the history, so a queue pins nothing more.
DEFAULT_WATCH_BUFFER_BYTES = 8 * 1024 * 1024
WATCH_DRAIN_GRACE = 1.0
