"""tinykube.apiserver."""
