"""The job polls for a file another job never writes: a busy wait in user code.

The main thread's innermost frame is the job's own function, so a patch (a timeout) could fix it.
"""

import faulthandler
import os
import signal
import time

faulthandler.register(signal.SIGUSR1, all_threads=True)


def wait_for_shard(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.05)


def main() -> None:
    for step in range(1, 4):
        print(f"step {step} ok", flush=True)
    print("waiting for shard 7", flush=True)
    wait_for_shard("/nonexistent/shard-00007.done")


if __name__ == "__main__":
    main()
