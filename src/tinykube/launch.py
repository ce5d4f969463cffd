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


def tune_gc() -> None:
    """Collect cycles less often in the long-running processes of `tinykube up`.

    Python starts a young-generation collection every 700 net allocations; serving the API and
    decoding watch events allocate thousands of short-lived (acyclic, refcount-freed) objects per
    request, so the default spends a noticeable share of the CPU walking young objects that die
    anyway, and the full collections walk every cached object. Start-up objects are frozen out
    of collection altogether (`gc.freeze`, as long-lived servers do)."""
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
