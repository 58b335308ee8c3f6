"""Probes: read-only views of the host a job runs on.

    gpu         NVML readings (one seam: the ``pynvml`` functions), units converted, failures counted
    gpu_poller  a sampler thread that keeps the last reading, so nobody waits on a stuck driver
    gpu_xid     the Xid event watcher
    disk        free space of the volumes the job and Phoenix write
    proctree    the process table from ``/proc``: a job's members, start tokens, signal masks
    stackdump   Python stack dumps of a hung job (py-spy, or faulthandler on SIGUSR1)

A probe reports; it decides nothing. May import: the standard library, ``pynvml``, and the
watchdog's top-level modules (``worker``, ``errors``).
"""
