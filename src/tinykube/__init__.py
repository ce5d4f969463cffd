"""tinykube: a small, pure-Python Kubernetes focused on service networking."""

__version__ = "0.1.0"
