"""What a runtime mounts into a container: prepared host paths at container paths.

The seam between the pod's volumes (`volumes`, which makes each volume's content on the host:
an emptyDir's directory, a configMap's files, a PVC's PersistentVolume path) and the runtimes
that put them in place (the process runtime's sandbox helper binds them in the container's
mount namespace; the container runtime writes them into the OCI bundle's `mounts`). A runtime
needs nothing else to know of volumes, and volumes nothing of runtimes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Mount:
    """One bind mount: `source` on the host (a directory or a file, already there) at `target`
    (an absolute path in the container), read-only or not."""

    source: Path
    target: str
    read_only: bool = False
