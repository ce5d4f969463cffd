"""tinykube.store."""
