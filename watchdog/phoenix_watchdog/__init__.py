"""Phoenix watchdog: observes a training job and diagnoses its failures. It never acts on the job.

Wings:

    diagnosis/  log text -> tracebacks, markers, category, signature, the failing user frame
    probes/     what the host says: GPUs through NVML and their Xid events, disks, the process
                tree, Python stack dumps of a hung job
    sources/    where the job's output comes from: a rotating log file, the Docker log stream

and, at the top, ``heartbeat`` (silence as a hang), ``worker`` (the one background-thread
lifecycle) and ``errors``.

It imports nothing from ``phoenix_sidecar`` (``tests/test_layout.py`` checks it): the sidecar
builds on the watchdog, not the other way round.
"""

__version__ = "0.1.0"
