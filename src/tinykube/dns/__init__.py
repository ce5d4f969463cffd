"""tinykube.dns."""
