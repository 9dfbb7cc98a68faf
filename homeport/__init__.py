"""homeport: git push deployments to a single-node k3s homelab."""

__version__ = "0.1.0"
