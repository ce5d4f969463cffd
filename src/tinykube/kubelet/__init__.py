"""tinykube.kubelet."""
