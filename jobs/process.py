"""Job processes: who owns a job, spawning one, stopping one, and whether it still runs.

One owner at a time: the process that trains a job holds an exclusive `fcntl.flock` on `<job>/owner.lock` for as long
as it lives, and writes its pid into that file. The kernel drops the lock when the process ends however it ends
(crash, SIGKILL, out of memory), so "is the lock held?" answers liveness for every job, whether the app or
`python -m finetune train` started it, without trusting a pid that may have been reused. A second trainer on the
same job cannot take the lock and is refused with a message that names the holder.

The app spawns a job process in a new session (its own process group), so a crash or an out-of-memory kill never
takes the app down, and Stop can signal the whole group. The app takes the lock itself before spawning and hands the
locked descriptor to the child, so there is no moment when a starting job looks dead. A data-parallel job's child is
torchrun (the launcher of its ranks): the launcher holds the lock for all of them, and Stop signals it, which passes
the signal on to every rank.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from jobs.files import TERMINAL, JobError, JobFiles, list_jobs

STOP_GRACE_S = 60.0  # how long a job may take to save its checkpoint after Stop before it is killed
LOCK_WAIT_S = 2.0  # a liveness probe holds the lock for microseconds: a starting owner retries this long


class JobBusy(JobError):
    """The job already has an owner process: a second trainer would write into the same folder."""

    def __init__(self, job_id: str, pid: int | None):
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"job {job_id} is already running in {holder}; one process trains a job at a time. "
                         f"Stop it first (python -m finetune stop {job_id}), or wait for it to end")
        self.job_id, self.pid = job_id, pid
        # safeio.problems.MESSAGES sentences, so the app's tabs say it in the page's language
        self.code = "job_busy" if pid else "job_busy_unknown"
        self.params = {"job": job_id, "pid": pid or ""}


class OwnerLock:
    """The exclusive lock a job's owner process holds on owner.lock (see the module docstring)."""

    def __init__(self, files: JobFiles, fd: int | None = None):
        self.files, self.fd = files, fd  # fd: a descriptor already locked (handed over by the spawning app)

    def acquire(self, wait_s: float = LOCK_WAIT_S) -> "OwnerLock":
        fd = os.open(self.files.lock, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise JobBusy(self.files.job_id, holder_pid(self.files)) from None
                time.sleep(0.05)
        self.fd = fd
        # The process Stop signals: this one, or under torchrun / accelerate launch the launcher (the ranks' parent),
        # which passes the signal on to every rank and ends them all when one fails.
        self.write_pid(os.getppid() if launched_by_torchrun() else os.getpid())
        return self

    def write_pid(self, pid: int) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(pid).encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor of the open file drops the flock
            self.fd = None

    def __enter__(self) -> "OwnerLock":
        return self if self.fd is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


def launcher(files: JobFiles) -> list[str]:
    """`python`, or torchrun with one process per GPU for a data-parallel run (--standalone: a free local port,
    so two jobs at once do not collide). torchrun ends every rank when one fails, and exits non-zero."""
    from finetune.config import TrainConfig

    processes = TrainConfig.load(files.config).processes
    if processes <= 1:
        return [sys.executable]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def holder_pid(files: JobFiles) -> int | None:
    try:
        text = files.lock.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def is_alive(files: JobFiles) -> bool:
    """True while some process owns the job (holds its lock), whoever started it."""
    try:
        fd = os.open(files.lock, os.O_RDONLY)
    except OSError:
        return False  # never owned: created and waiting, or from before owner locks
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return False


_procs: dict[str, subprocess.Popen] = {}  # jobs this process started, so their exit codes are collected
_spawn_lock = threading.Lock()


def start_job(files: JobFiles, resume: bool = False) -> int:
    """Spawn the job process (`python -m jobs.worker`, under torchrun for several processes) in its own process
    group, owning the job; returns its pid. JobBusy when the job already has an owner. Output goes to train.log."""
    with _spawn_lock:
        lock = OwnerLock(files).acquire()
        try:
            files.stop_request.unlink(missing_ok=True)
            cmd = launcher(files) + ["-m", "jobs.worker", str(files.dir), "--lock-fd", str(lock.fd)]
            cmd += ["--resume"] if resume else []
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
            root = Path(__file__).resolve().parent.parent
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
            with files.log.open("ab") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, env=env, cwd=root, pass_fds=(lock.fd,))
            lock.write_pid(proc.pid)
        finally:
            lock.release()  # the child holds the lock through its own copy of the descriptor
        _procs[files.job_id] = proc
        files.update_status(state="starting", pid=proc.pid, error=None)
        threading.Thread(target=_reap, args=(files, proc), daemon=True).start()
        return proc.pid


def _reap(files: JobFiles, proc: subprocess.Popen) -> None:
    """Collect the exit code; a process that died without saying so (killed, out of memory) is marked here."""
    code = proc.wait()
    if files.read_status().get("state") not in TERMINAL:
        stopped = files.stop_request.exists()
        files.update_status(
            state="stopped" if stopped else "failed",
            error=None if stopped else f"the job process ended with exit code {code} (killed, or out of memory?)",
        )


def read_job(files: JobFiles) -> dict:
    """status.json, corrected when no process owns the job any more but it never wrote a final stage."""
    status = files.read_status()
    if status.get("state") not in TERMINAL + ("created",) and not is_alive(files):
        time.sleep(0.2)  # the reaper thread or the process's last words may be landing right now: look again
        status = files.read_status()
        if status.get("state") not in TERMINAL + ("created",) and not is_alive(files):
            stopped = files.stop_request.exists()
            status = files.update_status(state="stopped" if stopped else "failed",
                                         error=None if stopped else "the job process is gone (crashed or killed)")
    return status


def _signal(pid: int, sig: int) -> None:
    """The whole group of a job the app spawned (it leads its own session); only the process of a CLI-started job
    (its group is the user's shell job, which is none of ours)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_job(files: JobFiles, grace_s: float = STOP_GRACE_S, wait: bool = False) -> dict:
    """Ask the owner to stop: SIGTERM, the trainer saves a checkpoint at the end of its step and exits; SIGKILL after
    grace_s. Works for any owner (app- or CLI-started). Returns status.json (final when `wait`)."""
    files.stop_request.write_text(str(time.time()))
    pid = holder_pid(files)
    if not pid or not is_alive(files):
        return read_job(files)
    _signal(pid, signal.SIGTERM)
    files.update_status(state="stopping")

    def escalate():
        deadline = time.time() + grace_s
        while time.time() < deadline and is_alive(files):
            time.sleep(0.2)
        if is_alive(files) and holder_pid(files) == pid:
            _signal(pid, signal.SIGKILL)

    if not wait:
        threading.Thread(target=escalate, daemon=True).start()
        return files.read_status()
    escalate()
    proc = _procs.get(files.job_id)
    if proc is not None:
        proc.wait()
    for _ in range(50):  # let the process's last words (or the reaper thread) land
        if files.read_status().get("state") in TERMINAL:
            break
        time.sleep(0.1)
    return read_job(files)


def wait_job(files: JobFiles, timeout_s: float | None = None, poll_s: float = 0.5) -> dict:
    deadline = None if timeout_s is None else time.time() + timeout_s
    while True:
        status = read_job(files)
        if status.get("state") in TERMINAL:
            return status
        if deadline is not None and time.time() > deadline:
            raise TimeoutError(f"job {files.job_id} still {status.get('state')} after {timeout_s} s")
        time.sleep(poll_s)


def running_jobs(data_dir: Path) -> list[JobFiles]:
    return [f for f in list_jobs(data_dir) if is_alive(f)]
