"""Record slurmrestd's answers next to what ``scontrol`` says at the same moment, as test fixtures.

Starts a real two-node cluster with ``slurmrestd`` (tests/kits/slurmcluster.py), drives jobs and
nodes through the states Phoenix reads (running, failed, requeued and held, pending with an
exclusion, cancelled, preempted, an array task, a signal, a drained and a dead node) and writes one
JSON file per state under ``tests/data/slurmrest/<api version>/``: ``rest`` (the REST answer),
``scontrol`` (``scontrol -o show job|node`` read right after). The unit tests check that both parse
to the same reading. Run it again (as root, with Slurm installed) to record another Slurm version:

    python scripts/record_slurmrest.py [OUT_DIR]
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kits.slurmcluster import REST_API, SlurmCluster  # noqa: E402


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "tests" / "data" / "slurmrest" / REST_API
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="phoenix-rec-") as tmp, SlurmCluster(Path(tmp) / "c") as c:
        sock = c.start_rest()[5:]
        work = Path(tmp) / "work"
        work.mkdir()
        work.chmod(0o777)

        def get(path: str) -> dict:
            conn = _Unix(sock)
            conn.request("GET", f"/slurm/{REST_API}{path}")
            return json.loads(conn.getresponse().read())

        def save(name: str, path: str, kind: str, ident: str) -> None:
            rest = get(path)
            line = c.run("scontrol", "-o", "show", kind, ident, check=False).stdout.strip()
            (out / f"{name}.json").write_text(json.dumps({"path": f"/slurm/{REST_API}{path}", "rest": rest,
                                                          "scontrol": line}, indent=1) + "\n")
            print("recorded", name)

        def sbatch(*args: str) -> str:
            return c.run("sbatch", "--parsable", f"--chdir={work}", *args).stdout.strip().split(";")[0]

        def until(job: str, word: str) -> None:
            SlurmCluster._wait(lambda: f"JobState={word} " in c.run("scontrol", "-o", "show", "job", job).stdout,
                               60, f"job {job} {word}")

        job = sbatch("-J", "twonode", "-N2", "-n2", "--requeue", f"--output={work}/%x-%j.out",
                     "--wrap", "srun --label sh -c 'echo hi; sleep 4; exit 3'")
        until(job, "RUNNING")
        save("job_running", f"/job/{job}", "job", job)
        until(job, "FAILED")
        save("job_failed", f"/job/{job}", "job", job)
        c.run("scontrol", "requeuehold", job)
        time.sleep(1)
        save("job_requeue_held", f"/job/{job}", "job", job)
        c.run("scontrol", "update", f"jobid={job}", "ExcNodeList=n2")
        c.run("scontrol", "release", job)
        time.sleep(1)
        save("job_pending_excluded", f"/job/{job}", "job", job)
        c.run("scancel", job)
        until(job, "CANCELLED")
        save("job_cancelled", f"/job/{job}", "job", job)

        arr = sbatch("-J", "arr", "-a", "1-2", "--wrap", "sleep 30")
        SlurmCluster._wait(lambda: "JobState=RUNNING" in c.run("scontrol", "-o", "show", "job", f"{arr}_1").stdout,
                           60, "array task 1")
        save("job_array_task", f"/job/{arr}_1", "job", f"{arr}_1")
        save("jobs", "/jobs", "job", arr)  # the list, with the scontrol line of one of them
        c.run("scancel", arr)

        sig = sbatch("-J", "sig", "--output=/dev/null", "--wrap", "kill -9 $$")
        until(sig, "FAILED")
        save("job_signalled", f"/job/{sig}", "job", sig)

        low = sbatch("-J", "low", "-N2", "--partition=low", "--exclusive", "--requeue", "--output=/dev/null",
                     "--wrap", "srun sleep 60")
        until(low, "RUNNING")
        sbatch("-J", "high", "-N2", "--partition=high", "--exclusive", "--output=/dev/null", "--wrap", "sleep 3")
        SlurmCluster._wait(lambda: "PreemptTime=None" not in c.run("scontrol", "-o", "show", "job", low).stdout,
                           60, "the preemption")
        SlurmCluster._wait(lambda: "JobState=RUNNING" not in c.run("scontrol", "-o", "show", "job", low).stdout,
                           60, "the preempted run to end")
        save("job_preempted", f"/job/{low}", "job", low)
        save("job_unknown", "/job/999999", "job", "999999")
        c.run("scancel", "--user=root", check=False)
        SlurmCluster._wait(lambda: c.idle_nodes() >= {"n1", "n2"}, 60, "idle nodes")

        save("node_idle", "/node/n1", "node", "n1")
        c.run("scontrol", "update", "nodename=n1", "state=drain", "reason=phoenix: test")
        save("node_drained", "/node/n1", "node", "n1")
        save("nodes", "/nodes", "node", "n1")
        c.kill_node("n2")
        SlurmCluster._wait(lambda: "NOT_RESPONDING" in c.run("scontrol", "-o", "show", "node", "n2").stdout,
                           60, "n2 not responding")
        save("node_not_responding", "/node/n2", "node", "n2")
        SlurmCluster._wait(lambda: "State=DOWN" in c.run("scontrol", "-o", "show", "node", "n2").stdout,
                           60, "n2 down")
        save("node_down", "/node/n2", "node", "n2")
        save("ping", "/ping", "partition", "main")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
