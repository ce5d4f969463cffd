"""`python -m tinykube` runs the CLI."""

from tinykube.cli.main import main

main()
