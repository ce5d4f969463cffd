"""Starting the child process of `tinykube up` (nodes, controllers, DNS, proxy), and the words
of its line protocol (see `components`). Light on purpose: `tinykube up` imports this before
anything heavy, so that the child's start-up overlaps its own."""

from __future__ import annotations

import subprocess
import sys

READY = "READY"  # the child's line once every component runs
FAILED = "FAILED "  # the child's last line when it cannot start: FAILED <reason>


def spawn_components() -> subprocess.Popen[bytes]:
    """Start the child now; it imports its modules, then waits for its options on stdin."""
    return subprocess.Popen([sys.executable, "-m", "tinykube.components"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)
