"""tinykube.controllers."""
