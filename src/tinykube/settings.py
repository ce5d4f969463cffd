"""Default addresses and sizes shared by the command line and the parts it starts.

This module imports nothing: `tinykube up` reads its option defaults from here before it
imports anything heavy, so that its child process can start at once (see `cluster`).
"""

DEFAULT_SERVICE_CIDR = "127.96.0.0/16"
DEFAULT_POD_CIDR = "127.244.0.0/16"
DEFAULT_WATCH_HISTORY = 5_000  # watch events kept for clients resuming a watch
