"""`python -m tinykube` runs the CLI; `up` starts its child first (`launch.spawn_early`)."""

import sys

if sys.argv[1:2] == ["up"]:
    from tinykube import launch

    launch.spawn_early(sys.argv[2:])

from tinykube.cli.main import main  # after the child's start, on purpose

main()
