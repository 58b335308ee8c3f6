"""A preprocessing step run as a subprocess crashes in native code; check=True reports the signal."""

import subprocess
import sys

CHILD = "import ctypes; print('tokenizing shard 3', flush=True); ctypes.string_at(0)"


def preprocess() -> None:
    subprocess.run([sys.executable, "-c", CHILD], check=True)


if __name__ == "__main__":
    print("preprocessing 4 shards", flush=True)
    preprocess()
