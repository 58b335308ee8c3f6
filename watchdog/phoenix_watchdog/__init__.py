"""Phoenix watchdog: observes a training job and diagnoses its failures.

It reads the job's output (log files, the Docker log stream), tracks heartbeats, reduces a failure
to a stable signature and category, and probes the GPUs. It never acts on the job and imports
nothing from ``phoenix_sidecar``.
"""

__version__ = "0.1.0"
