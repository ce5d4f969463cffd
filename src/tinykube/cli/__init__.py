"""tinykube.cli."""
