"""tinykube.proxy."""
