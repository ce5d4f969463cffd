"""tinykube.client."""
