"""Observe: everything that tells humans and machines how the job is doing; nothing here decides.

    observability  the hub one session builds: metrics, the HTTP endpoint, safety gates, notifier,
                   and their background samplers (NVML, Xid, disk), started and stopped together
    metrics        Prometheus collectors; label sets come from the owning vocabularies' enums
    http           ``/metrics`` and ``/healthz``
    gates          hardware safety gates (temperature, power, disk, GPU errors); pure
    notify         webhook notifications from a bounded queue
    console        Phoenix's lines on stderr
    runlog         the job's output and Phoenix's events as rotated JSON lines

Listeners get events from the bus (``phoenix_sidecar.events``) and never call back into the
supervisor. May import: ``phoenix_watchdog``, the sidecar's shared modules (``events``, ``errors``,
``fsutil``), the settings schema (``config.schema``; never the loader: what it needs is injected),
and vocabularies of other wings (``supervise.state``, ``supervise.policy``, ``repair.outcomes``).
"""

from phoenix_sidecar.observe.console import ConsoleReporter, RunLogRecorder
from phoenix_sidecar.observe.observability import Observability, SafetyTrip
from phoenix_sidecar.observe.runlog import RunLog

__all__ = ["ConsoleReporter", "Observability", "RunLog", "RunLogRecorder", "SafetyTrip"]
