"""DockLock: declarative plan/apply for caged Podman workloads with a signed ledger."""

__version__ = "0.1.0"
