"""Phoenix sidecar: acts on what the watchdog observes.

Policy, repair, the job runtimes (local process group, Docker container), the metrics server and
the ``phoenix`` command line live here. Imports run from here to ``phoenix_watchdog``, never back.
"""

__version__ = "0.1.0"
