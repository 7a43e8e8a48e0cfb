"""Talking to Podman: connection, private API service, typed live state.

Only `docklock.runtime.podman` imports podman-py; everything else uses these names.
"""

from docklock.runtime.podman import (
    ENV_URL,
    ContainerInfo,
    HealthCheckResult,
    ImageInfo,
    PodmanNotFoundError,
    PodmanRuntime,
    PodmanTimeoutError,
    PrivateService,
    UrlChoice,
    connect,
    default_socket,
    demux_logs,
    normalize_url,
    resolve_url,
)

__all__ = [
    "ENV_URL",
    "ContainerInfo",
    "HealthCheckResult",
    "ImageInfo",
    "PodmanNotFoundError",
    "PodmanRuntime",
    "PodmanTimeoutError",
    "PrivateService",
    "UrlChoice",
    "connect",
    "default_socket",
    "demux_logs",
    "normalize_url",
    "resolve_url",
]
