"""The evaluation worker: one submission at a time, each in a sandboxed child (``sandbox``).

Only one worker may run per database: it starts by putting back in the queue whatever a
previous worker was evaluating when it died (so a killed worker resumes where it stopped),
and it never times a model while another evaluation runs, because there is no other.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from ..sandbox import bwrap_works, kill_stale, run_evaluation
from . import db

PREFIX = "olympics-eval-"
PGID_FILE = "sandbox.pgid"


def remove_stale_dirs() -> int:
    """Clean up after workers that were killed (their pid is gone): what is left of their
    sandbox, and their temporary directory. Returns how many directories."""
    removed = 0
    for d in Path(tempfile.gettempdir()).glob(PREFIX + "*-*"):
        pid = d.name[len(PREFIX):].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                kill_stale(int((d / PGID_FILE).read_text()))
            except (OSError, ValueError):
                pass
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    return removed


class _Stop:
    requested = False


def run(url: str, eval_dir: Path, timeout: float = 120.0, memory_mb: int = 2048,
        poll: float = 0.2, once: bool = False, log=print) -> int:
    """Evaluate queued submissions until stopped (SIGTERM/SIGINT), or until the queue is
    empty when ``once``. Returns how many it evaluated."""
    eval_dir = Path(eval_dir)
    if not (eval_dir / "vision.npz").is_file() and not (eval_dir / "language.npz").is_file():
        raise FileNotFoundError(f"{eval_dir} holds neither vision.npz nor language.npz "
                                "(see `tito olympics make-eval-data`)")
    engine = db.connect(url)
    lock = db.WorkerLock(engine)
    if not lock.acquire():
        engine.dispose()
        raise WorkerBusy("another worker is already evaluating for this database: run exactly one "
                         "(`tito olympics serve` starts its own unless --no-worker)")
    try:
        return _loop(engine, eval_dir, timeout, memory_mb, poll, once, log)
    finally:
        lock.release()
        engine.dispose()


class WorkerBusy(RuntimeError):
    """Another worker holds this database."""


def _loop(engine, eval_dir, timeout, memory_mb, poll, once, log) -> int:
    stop = _Stop()

    def request_stop(*_):
        stop.requested = True
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    back = db.reset_running(engine)
    remove_stale_dirs()
    log(f"worker: sandbox {'bwrap+rlimits' if bwrap_works() else 'rlimits only (no working bwrap)'}; "
        f"{back} interrupted evaluation(s) back in the queue", flush=True)
    done = 0
    while not stop.requested:
        job = db.claim_next(engine)
        if job is None:
            if once:
                break
            time.sleep(poll)
            continue
        sid, data = job
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-") as tmp:
            path = Path(tmp, "submission.ttb")
            path.write_bytes(data)
            t0 = time.perf_counter()
            outcome = run_evaluation(path, eval_dir, timeout=timeout, memory_mb=memory_mb,
                                     pidfile=Path(tmp, PGID_FILE))
        db.finish(engine, sid, outcome.result, outcome.error, outcome.sandbox)
        done += 1
        log(f"worker: submission {sid} {'done' if outcome.result else 'failed: ' + outcome.error} "
            f"({time.perf_counter() - t0:.2f} s)", flush=True)
    return done


class Supervisor:
    """Keeps one worker process running beside the web server (``tito olympics serve``):
    a worker that dies is started again, and its interrupted evaluation resumes."""

    def __init__(self, args: list[str], env: dict | None = None, log=print):
        import threading

        self.args, self.env, self.log = args, env, log
        self.child = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="olympics-worker-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._spawn()
        self._thread.start()
        return self

    def _spawn(self) -> None:
        import subprocess

        from ..sandbox import die_with_parent

        self.child = subprocess.Popen(self.args, env=self.env, preexec_fn=die_with_parent,
                                      stdin=subprocess.DEVNULL)

    def _watch(self) -> None:
        delay = 1.0
        while not self._stop.wait(0.5):
            code = self.child.poll()
            if code is None:
                delay = 1.0
                continue
            self.log(f"olympics: the worker exited (code {code}); starting it again in {delay:.0f} s", flush=True)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, 30.0)
            self._spawn()
            self.restarts += 1

    def stop(self, timeout: float = 30.0) -> None:
        import subprocess

        self._stop.set()
        self._thread.join()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
