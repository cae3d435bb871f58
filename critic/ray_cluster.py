"""The Ray cluster a command runs on (`critic build --engine ray`, `critic critique --all --engine ray`).

Example:
    >>> with ray_connection(None):                       # doctest: +SKIP
    ...     ray.cluster_resources()["CPU"]
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import ray


@contextlib.contextmanager
def ray_connection(address: str | None, cpus: int | None = None) -> Iterator[None]:
    """Connected to Ray for the block: the cluster at ``address``, the one this process already joined, or a
    local Ray of its own with ``cpus`` CPUs (default: this process's cores), shut down afterwards."""
    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a local run reports nowhere
        # "local": never a cluster that another program happens to run on this machine (ray.init's default)
        ray.init(address="local", num_cpus=cpus or len(os.sched_getaffinity(0)), include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
