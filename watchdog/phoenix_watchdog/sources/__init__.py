"""Sources: where a job's output comes from, as ordered chunks of bytes.

    filetail    a log file that may be rotated, truncated or recreated, read without losing lines
    dockerlogs  the Docker log stream's multiplexed frames, decoded

A source only reads; what to do with the bytes (tail, heartbeat, run log) is the runtime's
business. May import: the standard library only.
"""
