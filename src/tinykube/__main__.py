"""`python -m tinykube` runs the CLI; `up` starts its child first (`launch.spawn_early`), and
turns the cyclic GC off until its start-up is done (`launch.tune_gc` turns it back on)."""

import sys

if sys.argv[1:2] == ["up"]:
    import gc

    gc.disable()
    from tinykube import launch

    launch.spawn_early(sys.argv[2:])

from tinykube.cli.main import main  # after the child's start, on purpose

main()
