"""`SlurmRuntime`: the `Runtime` of `phoenix watch --slurm-job`, supervising one batch job through Slurm.

A run is one execution of the job, told apart by its ``Restarts`` count and start time. `start`
attaches to a running job, or brings a finished (or Phoenix-held) one back: ``scontrol
requeuehold``, the node exclusions Phoenix decided, ``release`` and ``StartTime=now`` (without it a
requeued job waits out its credential's lifetime). While the job waits in the queue the heartbeat
is paused: waiting for nodes is not a hang. `wait` reads the job every ``slurm_poll_seconds`` (the
scheduler's own pace; faster reads would only cost the controller) and ends the run when the job
finished, or the scheduler took it back (requeue after a preemption or a node failure). While the
controller does not answer, the heartbeat is paused and the reads go on (for up to ten minutes).

How the end is judged is in `ends`: an end that is the scheduler's doing carries an ``engine:``
cause and costs no failure budget. A hardware failure in one node's output (Xid, ECC, fallen off
the bus) is turned into such an end too, when another node can take over: the node is excluded from
the requeued job and, when ``slurm_drain`` is on and Phoenix may, drained with the reason.

`stop` ends a run with ``requeuehold`` (Slurm signals the steps, waits ``KillWait``, kills), which
leaves the job queued and held for the next `start`; a shutdown of Phoenix leaves the job alone.
Phoenix never cancels a job, so a CANCELLED job is someone's decision: supervision ends there
(`RuntimeUnavailable`, exit 5) instead of Phoenix requeueing what a human cancelled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import RuntimeUnavailable
from phoenix_sidecar.runtime.base import EngineCause, EngineJob, OutputListener, RunEnd, engine_cause, engine_end
from phoenix_sidecar.runtime.output import wait_quiet
from phoenix_sidecar.runtime.slurm import ends
from phoenix_sidecar.runtime.slurm.api import SlurmApi
from phoenix_sidecar.runtime.slurm.client import JOB_STATES, JobInfo, SlurmClient
from phoenix_sidecar.runtime.slurm.output import JobOutput
from phoenix_watchdog.diagnosis.failure import ExitStatus, HangInfo
from phoenix_watchdog.heartbeat import Heartbeat

log = logging.getLogger(__name__)
MAX_LAUNCH_FAILURES = 3  # requeued runs in a row that Slurm failed at launch, before one counts
LAUNCH_RETRY_PAUSE = 2.0
CONTROLLER_OUTAGE_SECONDS = 600.0  # how long slurmctld may not answer before Phoenix gives up on it


@dataclass
class _Run:
    """One run: queued (``key`` None) until Slurm starts it, then told apart by ``key``."""

    key: tuple[int, float] | None
    started_at: float
    nodes: list[str]
    num_tasks: int = 1
    ended: JobInfo | None = None
    hang: HangInfo | None = None
    stopped_for: str | None = None


class SlurmRuntime:
    """Supervises the Slurm job named by ``settings.slurm_job`` (id, ``id_task`` or name).

    Args:
        settings: ``slurm_job``, ``slurm_poll_seconds``, ``slurm_task_output``, ``slurm_drain``,
            ``slurm_timeout_is_failure``, ``dump_signal``, ``stack_dump_timeout_seconds``.
        heartbeat: fed by the job's output files; paused while the job is queued.
        listeners: receive every block of the job's output (run log, console).
        client: how Slurm is asked (`api.connect`: slurmrestd or the commands; a test may pass its own).
        handled_until: wall time up to which Phoenix already dealt with this job (the state's last
            update): a failure found at the first start after that was never handled, and is the first
            run's end instead of being requeued silently.
    """

    def __init__(self, settings: Settings, heartbeat: Heartbeat, *, listeners: Sequence[OutputListener] = (),
                 client: SlurmApi | None = None, handled_until: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._heartbeat = heartbeat
        self._client: SlurmApi = client or SlurmClient()
        self._handled_until = handled_until
        self._clock = clock
        self._output = JobOutput(heartbeat, listeners, task_pattern=settings.slurm_task_output)
        self._cond = threading.Condition(threading.RLock())  # wakeup() may run in a signal handler
        self._woken = False
        self._job_id: str | None = None
        self._run: _Run | None = None
        self.excluded: list[str] = []  # nodes Phoenix excluded from the job
        self._to_exclude: list[str] = []
        self.requeues = 0  # requeues Phoenix made (scontrol requeuehold)
        self._hostnames: tuple[str, list[str]] = ("", [])  # the last run's hostlist, expanded
        self._launch_failures = 0
        self._outage_since: float | None = None
        self.last: JobInfo | None = None  # the latest reading, for status

    # -- Runtime -------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return f"slurm job {self._job_id or self._settings.slurm_job}"

    @property
    def job_id(self) -> str | None:
        return self._job_id

    def start(self) -> None:
        first = self._job_id is None
        if first:
            self._job_id = self._client.find(self._settings.slurm_job)
        job_id = self._job_id
        assert job_id is not None
        info = self._read()
        if first:
            self._output.follow(job_id, [info.stdout, info.stderr])
        self._output.tail.clear()
        self._heartbeat.reset()
        if info.running:
            log.info("%s is running on %s; attaching to it", self.target, info.nodes)
            self._begin(info)
            return
        if first and info.state == "COMPLETED":  # done before Phoenix watched: nothing to run again
            self._run = _Run(info.run_key, info.start_time or time.time(), [], ended=info)
            return
        if first and self._unhandled_failure(info):
            log.warning("%s ended %s before Phoenix watched it; handling that end first", self.target, info.state)
            self._output.read_last([info.stdout, info.stderr])
            self._run = _Run(info.run_key, info.start_time or time.time(), self._client.hostnames(info.nodes),
                             info.num_tasks, ended=info)
            return
        self._requeue(info)
        self._run = _Run(None, time.time(), [])
        self._heartbeat.pause()  # queued: no output is expected until Slurm starts it

    def wait(self, timeout: float | None) -> RunEnd | None:
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            run = self._run
            if run is None:
                raise RuntimeUnavailable(f"{self.target}: wait without a run")
            if run.ended is None:
                info = self._read_through_outage(run)
                if info is not None:
                    self._observe(run, info)
            if run.ended is not None:
                return self._finish(run)
            with self._cond:
                if self._woken:
                    self._woken = False
                    return None
                remaining = None if deadline is None else deadline - self._clock()
                if remaining is not None and remaining <= 0:
                    return None
                pause = self._settings.slurm_poll_seconds
                self._cond.wait(pause if remaining is None else min(pause, remaining))
                if self._woken:
                    self._woken = False
                    return None

    def dump_stack(self) -> str | None:
        """Send ``dump_signal`` to the job's steps (every rank) and collect what they print in reply."""
        signal, run = self._settings.dump_signal, self._run
        if not signal or self._settings.stack_dump == "off" or run is None or run.ended or self._job_id is None:
            return None
        mark = self._output.tail.mark()
        try:
            self._client.signal_steps(self._job_id, signal)
        except RuntimeUnavailable as exc:
            log.warning("could not send %s to %s for a stack dump: %s", signal, self.target, exc)
            return None
        dump = wait_quiet(self._output.tail, mark, drain=self._output.drain, quiet=0.5,
                          limit=self._settings.stack_dump_timeout_seconds, clock=self._clock)
        return dump.decode("utf-8", errors="replace") or None

    def stop(self, *, hang: HangInfo | None = None, reason: str | None = None) -> RunEnd:
        """End the run with ``requeuehold``: the job stays queued and held until the next `start`.
        On Phoenix's own shutdown the job is left as it is (the next `phoenix watch` attaches)."""
        run = self._run
        if reason == "shutdown" or run is None or self._job_id is None:
            if run is not None and run.ended is None:
                log.warning("Phoenix is shutting down; leaving %s as it is (scancel stops it)", self.target)
            self._run = None
            return RunEnd(exit=ExitStatus(), started_at=run.started_at if run else time.time(), ended_at=time.time(),
                          tail=self._output.tail.text(), stopped_for="shutdown")
        run.hang, run.stopped_for = hang, reason
        if run.ended is None:
            self._requeue_hold(self._job_id)
            deadline = self._clock() + max(60.0, self._settings.kill_grace_seconds * 3)
            while run.ended is None:
                info = self._read()
                if not info.running or (run.key is not None and info.run_key != run.key):
                    run.ended = info
                elif self._clock() > deadline:
                    raise RuntimeUnavailable(f"{self.target} did not stop after scontrol requeuehold")
                else:
                    time.sleep(min(1.0, self._settings.slurm_poll_seconds))
        return self._finish(run)

    def engine_job(self) -> EngineJob | None:
        """The job as last read (any thread may ask: the metrics read it at scrape time)."""
        info, (hostlist, expanded) = self.last, self._hostnames
        if info is None:
            return None
        nodes = expanded if hostlist == info.nodes else ([info.nodes] if info.nodes else [])
        return EngineJob("slurm", info.job_id, info.state if info.state in JOB_STATES else "OTHER", tuple(nodes),
                         tuple(self.excluded), self.requeues, info.restarts)

    def wakeup(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop following the output; the job itself is left as it is."""
        self._output.close()

    # -- runs ----------------------------------------------------------------------------------
    def _read(self) -> JobInfo:
        assert self._job_id is not None
        self.last = self._client.job(self._job_id)
        return self.last

    def _read_through_outage(self, run: _Run) -> JobInfo | None:
        """The job, or None while the controller does not answer (a restart, a fail-over): the
        heartbeat is paused meanwhile, as silence then proves nothing; after `CONTROLLER_OUTAGE_SECONDS`
        the outage ends supervision."""
        try:
            info = self._read()
        except RuntimeUnavailable as exc:
            now = self._clock()
            if self._outage_since is None:
                self._outage_since = now
                self._heartbeat.pause()
                log.warning("Slurm does not answer about %s (%s); waiting for it", self.target, exc)
            if now - self._outage_since > CONTROLLER_OUTAGE_SECONDS:
                raise
            return None
        if self._outage_since is not None:
            log.warning("Slurm answers again about %s (after %.0f s)", self.target, self._clock() - self._outage_since)
            self._outage_since = None
            if run.key is not None:
                self._heartbeat.resume()
        return info

    def _unhandled_failure(self, info: JobInfo) -> bool:
        return info.finished and info.state != "COMPLETED" and (info.end_time or 0.0) > (self._handled_until or 0.0)

    def _begin(self, info: JobInfo) -> None:
        self._run = _Run(info.run_key, info.start_time or time.time(), self._client.hostnames(info.nodes),
                         info.num_tasks)
        self._hostnames = (info.nodes, self._run.nodes)
        self._heartbeat.resume()
        self._heartbeat.reset()

    def _observe(self, run: _Run, info: JobInfo) -> None:
        """Does this reading start the queued run, or end the current one?"""
        if run.key is None:
            if info.running:
                log.info("%s started on %s (restart %d)", self.target, info.nodes, info.restarts)
                self._begin(info)
            elif info.finished:  # cancelled while queued, or failed at once
                run.ended = info
            return
        if info.running and info.run_key == run.key:
            return
        # Finished, back in the queue (a requeue), or already running again as a later run.
        run.ended = info

    def _requeue(self, info: JobInfo) -> None:
        """Bring the job back to run now, on the nodes Phoenix still trusts."""
        job_id = self._job_id
        assert job_id is not None
        info = self._settled(info)
        held_by_us = False
        if info.finished:
            self._requeue_hold(job_id)
            held_by_us = True
        elif self._to_exclude and not info.held:
            self._client.hold(job_id)
            held_by_us = True
        if self._to_exclude:
            self.excluded = sorted(set(self.excluded) | set(self._to_exclude))
            self._client.exclude(job_id, self.excluded)
            log.warning("%s: excluding %s from the requeued job", self.target, ",".join(self.excluded))
            self._to_exclude = []
        if held_by_us or info.held:
            self._client.release(job_id)
        self._client.start_now(job_id)

    def _requeue_hold(self, job_id: str) -> None:
        self._client.requeue_hold(job_id)
        self.requeues += 1

    def _settled(self, info: JobInfo) -> JobInfo:
        """The job once a requeue or stop in progress is over (Slurm refuses to act on it meanwhile)."""
        deadline = self._clock() + max(60.0, self._settings.kill_grace_seconds * 3)
        while info.settling and self._clock() < deadline:
            time.sleep(min(0.5, self._settings.slurm_poll_seconds))
            info = self._read()
        return info

    def _finish(self, run: _Run) -> RunEnd:
        """Read the last output, judge the end, and report it (once)."""
        self._output.drain()
        info = run.ended
        assert info is not None
        tail = self._output.tail.text()
        ranks = ends.rank_nodes(tail, run.nodes, run.num_tasks)
        phoenix_stopped = run.hang is not None or run.stopped_for is not None
        if info.state == "CANCELLED" and not phoenix_stopped:
            # Phoenix never cancels (it stops with requeuehold): someone decided the job is over.
            if self._run is run:
                self._run = None
            raise RuntimeUnavailable(f"{self.target} was cancelled outside Phoenix (scancel); nothing left to "
                                     f"supervise. Resubmit it, or scontrol requeue {info.job_id}, and watch again")
        states = {} if phoenix_stopped else self._client.node_states(run.nodes)
        status, cause = ends.judge_end(info, states, timeout_is_failure=self._settings.slurm_timeout_is_failure,
                                       phoenix_stopped=phoenix_stopped)
        if cause is None and not phoenix_stopped and not status.succeeded:
            cause = self._hardware(tail, ranks, run.nodes) or self._launch_failed(info, tail)
        if tail.strip():
            self._launch_failures = 0
        judged = engine_cause(cause)
        if judged and judged[0] is EngineCause.NODE_FAIL:
            self._to_exclude += [n for n in judged[1].split(",") if n in run.nodes]
        if cause:
            log.warning("%s: run ended %s (%s): not the job's fault", self.target, info.state, cause)
        if self._run is run:
            self._run = None
        return RunEnd(exit=status, started_at=run.started_at, ended_at=info.end_time or time.time(),
                      tail=tail + f"\n[slurm] job {info.job_id} {info.state} on {info.nodes or '-'}"
                                  f" (reason {info.reason}, restarts {info.restarts})\n",
                      hang=run.hang, stopped_for=run.stopped_for or cause, ranks=ranks)

    def _launch_failed(self, info: JobInfo, tail: str) -> str | None:
        """A requeued run that Slurm failed before it ran anything: not the job's fault, a few times.

        A node refuses to launch a job id it killed moments ago ("Job N already killed, do not launch
        batch job": its credential is revoked for ``cred_expire``), and Slurm reports that as a
        FAILED run of no time and no output. ``StartTime=now`` can meet that window; waiting it out
        each time would cost the 125 s it skips. So such a run is requeued again, after a short
        pause, up to `MAX_LAUNCH_FAILURES` times in a row; after that it counts like any failure.
        """
        ran = (info.end_time or 0.0) - (info.start_time or 0.0)
        if info.state != "FAILED" or tail.strip() or ran > 1.0 or self._launch_failures >= MAX_LAUNCH_FAILURES:
            return None
        self._launch_failures += 1
        time.sleep(LAUNCH_RETRY_PAUSE * self._launch_failures)
        return engine_end(EngineCause.LAUNCH_FAILED)

    def _hardware(self, tail: str, ranks: dict[str, str], nodes: list[str]) -> str | None:
        """A hardware failure on some of the run's nodes: exclude (and drain) them, when others remain."""
        bad = [n for n in ends.hardware_nodes(tail, ranks) if n not in self.excluded]
        if not bad:
            return None
        for node in bad:
            if self._settings.slurm_drain:
                try:
                    self._client.drain(node, f"phoenix: GPU hardware failure in {self.target}")
                    log.warning("drained node %s (GPU hardware failure in its output)", node)
                except RuntimeUnavailable as exc:
                    log.warning("could not drain node %s (Phoenix lacks the rights?): %s", node, exc)
        self._to_exclude += bad
        return engine_end(EngineCause.HARDWARE, ','.join(bad))
