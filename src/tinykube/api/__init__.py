"""tinykube.api."""
