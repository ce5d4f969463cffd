"""`python bench/api` runs the API server benchmark; see run.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if "--store" in sys.argv[1:]:
    import etcd

    etcd.main(sys.argv[1:])
else:
    import run

    run.main(sys.argv[1:])
