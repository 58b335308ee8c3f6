"""A real two-node Slurm cluster on this machine, for the Slurm tests and the Slurm benchmark.

It installs nothing (`scripts/test.sh` installs Debian's ``slurm-wlm`` and ``munge``): it writes a
configuration under one directory, starts ``munged``, ``slurmctld`` and two ``slurmd`` (nodes
``n1`` and ``n2``, both on this host at 127.0.0.1, each with its own port, spool, pid and log
file), waits until the controller answers and both nodes are idle, and stops every daemon by its
pid file. Ports and paths are settable so two runs can share a machine.

Settings chosen for tests: ``cred_expire=10`` (a requeued job may run again after 10 s, not 125),
``SlurmdTimeout=10`` (a killed ``slurmd`` marks its node DOWN soon), ``KillWait=3``, a low
partition preempted (REQUEUE, grace 3 s) by a high one, and two fake GPUs per node for GRES.

`start_rest` adds ``slurmrestd`` (the REST API, v0.0.38 on Debian's 22.05): it refuses to run as
root, so it runs as ``nobody``, which must reach ``slurm.conf`` and the munge socket (the cluster's
directory and its parents get the search bit, the munge directory too; nothing becomes listable or
writable). On a unix socket with ``rest_auth/local`` (root, the tests' user, may connect; the daemon
acts as ``nobody``); on a TCP port with ``rest_auth/jwt`` (this Debian's controller has no
``auth/jwt``, so every token is refused there: what the refused-token test needs).

As a script (what ``scripts/slurm-env.sh`` runs): ``python tests/kits/slurmcluster.py start DIR``
prints the ``SLURM_CONF`` to export (``start-rest DIR`` also starts slurmrestd and prints its
``PHOENIX_SLURM_REST_URL``); ``... stop DIR`` stops it.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

NODES = ("n1", "n2")
BINARIES = ("munged", "slurmctld", "slurmd", "scontrol", "sbatch", "squeue")
REST_API = "v0.0.38"  # the API version the REST daemon is started with (the one Phoenix reads)


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]


def free_ports(count: int) -> list[int]:
    """``count`` consecutive free TCP ports on 127.0.0.1 (Slurm's node port ranges are consecutive).

    Taken below the kernel's ephemeral range: a port from that range can be handed to any outgoing
    connection (another test's, a gloo peer's) between this check and its use; one below it is
    only ever taken by an explicit bind.
    """
    low = _ephemeral_start()
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, max(10001, low - count))
        if all(_port_free(base + i) for i in range(count)):
            return [base + i for i in range(count)]
    raise RuntimeError("no free port range found")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _sbin(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    """munged + slurmctld + slurmd n1, n2 under ``root``.

    Args:
        root: the directory for configuration, state, spools, logs and pid files.
        ctld_port: the controller's port; None picks a free one.
        node_ports: the first of two consecutive slurmd ports; None picks free ones.
    """

    def __init__(self, root: Path, *, ctld_port: int | None = None, node_ports: int | None = None) -> None:
        self.root = Path(root).resolve()
        ports = free_ports(3) if ctld_port is None or node_ports is None else []
        self.ctld_port = ctld_port or ports[0]
        self.node_port = node_ports or ports[1]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.sock"
        self.host = socket.gethostname()
        self.rests: dict[str, subprocess.Popen[bytes]] = {}  # URL -> slurmrestd

    # -- environment ---------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """What a Slurm command needs to talk to this cluster (``SLURM_CONF``; no DNS lookups)."""
        return {"SLURM_CONF": str(self.conf)}

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env.update(self.env)
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """A Slurm command against this cluster."""
        return subprocess.run(list(args), env=self.environ(), capture_output=True, text=True, check=check,
                              timeout=timeout)

    # -- life cycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> SlurmCluster:
        self._write_config()
        self._start_munge()
        env = self.environ()
        subprocess.run([_sbin("slurmctld"), "-f", str(self.conf)], env=env, check=True)
        self._wait(lambda: self.run("scontrol", "ping", check=False).stdout.count("UP") > 0, timeout, "slurmctld")
        for node in NODES:
            subprocess.run([_sbin("slurmd"), "-f", str(self.conf), "-N", node], env=env, check=True)
        self._wait(lambda: self.idle_nodes() >= set(NODES), timeout, "both nodes idle")
        return self

    def start_rest(self, listen: str | None = None, *, auth: str = "rest_auth/local", timeout: float = 30.0) -> str:
        """Start ``slurmrestd`` as ``nobody``; returns Phoenix's ``slurm_rest_url`` for it.

        Args:
            listen: ``unix:PATH`` or ``HOST:PORT``; None: a unix socket ``rest/slurmrestd.sock`` here.
            auth: ``rest_auth/local`` (unix sockets only) or ``rest_auth/jwt``.
        """
        nobody = pwd.getpwnam("nobody")
        for path in [self.root, *self.root.parents]:  # nobody reads slurm.conf and reaches munge.sock
            if path.stat().st_uid == os.getuid() and not path.stat().st_mode & 0o001:
                path.chmod(path.stat().st_mode | 0o001)
        self.munge_socket.parent.chmod(0o711)
        if listen is None:
            sock_dir = self.root / "rest"
            sock_dir.mkdir(exist_ok=True)
            os.chown(sock_dir, nobody.pw_uid, nobody.pw_gid)
            listen = f"unix:{sock_dir / 'slurmrestd.sock'}"
        log = (self.root / "slurmrestd.log").open("ab")
        rest = subprocess.Popen([_sbin("slurmrestd"), "-a", auth, "-s", f"openapi/{REST_API}", listen],
                                     env=self.environ(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
        log.close()
        url = listen if listen.startswith("unix:") else f"http://{listen}"
        self.rests[url] = rest
        if listen.startswith("unix:"):
            self._wait(lambda: Path(listen[5:]).exists() or rest.poll() is not None, timeout, "slurmrestd")
        else:
            host, _, port = listen.rpartition(":")
            self._wait(lambda: _answers(host, int(port)) or rest.poll() is not None, timeout, "slurmrestd")
        if rest.poll() is not None:
            raise RuntimeError(f"slurmrestd exited: {(self.root / 'slurmrestd.log').read_text()[-2000:]}")
        return url

    def stop_rest(self, url: str | None = None) -> None:
        """Stop the slurmrestd serving ``url`` (None: every one this cluster started)."""
        for key in [url] if url else list(self.rests):
            rest = self.rests.pop(key, None)
            if rest is not None and rest.poll() is None:
                rest.terminate()
                try:
                    rest.wait(15)
                except subprocess.TimeoutExpired:
                    rest.kill()
                    rest.wait()
            if key.startswith("unix:") and os.path.exists(key[5:]):
                os.unlink(key[5:])

    def rest_log(self) -> str:
        path = self.root / "slurmrestd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop every daemon this cluster started, by its pid file (slurmd first, munged last)."""
        self.stop_rest()
        for name in [f"slurmd-{n}.pid" for n in NODES] + ["slurmctld.pid", "munge/munged.pid"]:
            self._kill_pidfile(self.root / name, signal.SIGTERM)
        # Steps whose slurmd was killed (a node crash) outlive every daemon: end them and their jobs.
        for pid, _, _ in self._processes():
            _kill_tree(pid)

    def kill_node(self, node: str) -> int:
        """A node crash: SIGKILL its slurmd (and, as a dead machine would, every job process on it)."""
        pid = int((self.root / f"slurmd-{node}.pid").read_text().split()[0])
        stepds = self._stepds_of(node)
        os.kill(pid, signal.SIGKILL)
        for stepd in stepds:
            _kill_tree(stepd)
        return pid

    def restart_node(self, node: str) -> None:
        subprocess.run([_sbin("slurmd"), "-f", str(self.conf), "-N", node], env=self.environ(), check=True)

    def revive_nodes(self) -> None:
        """Start again every slurmd that is not running (after `kill_node`)."""
        for node in NODES:
            try:
                pid = int((self.root / f"slurmd-{node}.pid").read_text().split()[0])
                os.kill(pid, 0)
            except (OSError, ValueError, IndexError):
                self.restart_node(node)

    def idle_nodes(self) -> set[str]:
        out = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout
        return {line.split()[0] for line in out.splitlines() if len(line.split()) == 2 and line.split()[1] == "idle"}

    def node_state(self, node: str) -> str:
        return self.run("sinfo", "-h", "-n", node, "-o", "%t", check=False).stdout.strip()

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pieces --------------------------------------------------------------------------------
    def _write_config(self) -> None:
        r = self.root
        for d in ("state", "spool/n1", "spool/n2", "munge", "dev"):
            (r / d).mkdir(parents=True, exist_ok=True)
        for i in (0, 1):
            dev = r / "dev" / f"nvidia{i}"
            if not dev.exists():
                subprocess.run(["mknod", str(dev), "c", "195", str(i)], check=True)
        n1, n2 = self.node_port, self.node_port + 1
        self.conf.write_text(f"""\
ClusterName=phoenix
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket},cred_expire=10
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd-%n.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
SlurmdTimeout=10
SlurmctldTimeout=10
MessageTimeout=5
KillWait=3
InactiveLimit=0
MinJobAge=600
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
GresTypes=gpu
NodeName=n[1-2] NodeHostname={self.host} NodeAddr=127.0.0.1 Port=[{n1}-{n2}] CPUs=4 RealMemory=2000 Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=low Nodes=n[1-2] MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=3
PartitionName=high Nodes=n[1-2] MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
""")
        (r / "gres.conf").write_text(f"AutoDetect=off\nNodeName=n[1-2] Name=gpu File={r}/dev/nvidia[0-1]\n")

    def _start_munge(self) -> None:
        m = self.root / "munge"
        key = m / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o400)
        m.chmod(0o700)
        # munged refuses to run as root without --force; the tests run as root.
        subprocess.run([_sbin("munged"), "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
                        f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log", f"--seed-file={m}/munged.seed"],
                       check=True)
        self._wait(self.munge_socket.exists, 10.0, "munged")

    def _stepds_of(self, node: str) -> list[int]:
        """The ``slurmstepd`` processes of ``node``: the parents of this cluster's job processes there.

        A slurmstepd rewrites its command line (``slurmstepd: [2.0]``), so it is found through its
        children, whose environment names the cluster (``SLURM_CONF``) and the node (``SLURMD_NODENAME``).
        """
        stepds = {pid for pid, env, cmd in self._processes() if cmd.startswith(b"slurmstepd")}
        return sorted({_ppid(pid) for pid, env, _ in self._processes()
                       if env.get(b"SLURMD_NODENAME") == node.encode()} & stepds)

    def _processes(self) -> list[tuple[int, dict[bytes, bytes], bytes]]:
        """(pid, environment, command line) of every process of this cluster's jobs and steps (their
        ``SLURM_CONF`` is this cluster's): what a stopped cluster must not leave behind."""
        mine = str(self.conf).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                env = dict(kv.partition(b"=")[::2] for kv in (entry / "environ").read_bytes().split(b"\0") if kv)
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if env.get(b"SLURM_CONF") == mine and (cmd.startswith(b"slurmstepd") or b"SLURM_JOB_ID" in env):
                found.append((int(entry.name), env, cmd))
        return found

    def _kill_pidfile(self, path: Path, sig: signal.Signals) -> None:
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @staticmethod
    def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise RuntimeError(f"slurm test cluster: timed out waiting for {what}")


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _kill_tree(pid: int) -> None:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            children.setdefault(_ppid(int(entry.name)), []).append(int(entry.name))
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children.get(p, []))
    for p in seen:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("start", "start-rest", "stop"):
        print("usage: slurmcluster.py start|start-rest|stop DIR", file=sys.stderr)
        return 2
    cluster = SlurmCluster(Path(argv[2]))
    if argv[1].startswith("start"):
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
        if argv[1] == "start-rest":
            url = cluster.start_rest()
            (cluster.root / "slurmrestd.pid").write_text(f"{cluster.rests[url].pid}\n")
            print(f"export PHOENIX_SLURM_REST_URL={url}")
    else:
        cluster._kill_pidfile(cluster.root / "slurmrestd.pid", signal.SIGTERM)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
