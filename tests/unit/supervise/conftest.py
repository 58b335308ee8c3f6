"""The supervise tests' fixtures (from ``kits.supervise``): a workspace in RAM."""

from kits.supervise import workspace  # noqa: F401
