"""Run one evaluation in a confined child process. All of the worker's sandboxing is here.

Always: a fresh interpreter (``-I``: no user site, no PYTHON* variables) with a minimal
environment, its own session, killed with the worker (``PR_SET_PDEATHSIG``), rlimits on
address space, CPU seconds, file size, open files and core dumps, a wall-clock timeout that
kills its whole process group, and one BLAS thread (so timings are comparable).

With bubblewrap (``bwrap``, when it is installed and works here) also: new user, PID,
network, IPC and UTS namespaces (no network at all), no capabilities, and a file system that
runs as nobody (uid 65534) and holds only the system's libraries, the Python installation, the ``tinytorch``/``tito``
packages (all read-only), the bundle and the evaluation data (read-only) and an empty
``/tmp``: the server's database and files are not visible.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child (preexec): get SIGKILL when the parent dies (Linux; a no-op elsewhere)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _limits(memory_mb: int, cpu_seconds: int):
    def apply():
        os.setsid()
        die_with_parent()
        import resource

        for res, value in ((resource.RLIMIT_AS, memory_mb * 1024 * 1024),
                           (resource.RLIMIT_CPU, cpu_seconds),
                           (resource.RLIMIT_FSIZE, 16 * 1024 * 1024),
                           (resource.RLIMIT_NOFILE, 256),
                           (resource.RLIMIT_CORE, 0)):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass
    return apply


_BWRAP_OK: bool | None = None


def bwrap_available() -> bool:
    """True when bubblewrap is installed and can make its namespaces on this machine."""
    global _BWRAP_OK
    if _BWRAP_OK is None:
        exe = shutil.which("bwrap")
        _BWRAP_OK = bool(exe) and subprocess.run(
            [exe, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    return _BWRAP_OK


def _package_roots() -> list[str]:
    import tinytorch
    import tito

    roots = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for mod in (tinytorch, tito):
        roots.add(os.path.dirname(os.path.realpath(mod.__file__)))
    import numpy
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__))))
    return sorted(r for r in roots if r)


def _bwrap_prefix(binds: list[tuple[str, str]]) -> list[str]:
    cmd = [shutil.which("bwrap"), "--unshare-all", "--die-with-parent", "--new-session",
           "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for top in ("/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/alternatives", "/etc/ld.so.cache"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.exists(top):
            cmd += ["--ro-bind", top, top]
    for root in _package_roots():
        if not root.startswith("/usr/"):
            cmd += ["--ro-bind", root, root]
    for src, dest in binds:
        cmd += ["--ro-bind", src, dest]
    return cmd + ["--chdir", "/tmp"]


@dataclass
class Outcome:
    result: dict | None        # the child's JSON result, when it finished
    error: str                 # why there is no result ("" when there is)
    sandbox: str               # what confined it: "bwrap+rlimits" or "rlimits"


def kill_stale(pgid: int) -> int:
    """Kill what is left of a sandbox whose worker died (its process group ``pgid``): bubblewrap
    can lose a process in its own set-up when its parent is killed at that moment. Only
    processes of that group that are bwrap or the evaluator are touched. Returns how many."""
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            pgrp = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
            cmd = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if pgrp == pgid and (b"bwrap" in cmd or b"tito.olympics.evaluate" in cmd):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def run_evaluation(bundle_path: Path, eval_dir: Path, timeout: float = 120.0,
                   memory_mb: int = 2048, use_bwrap: bool | None = None,
                   pidfile: Path | None = None) -> Outcome:
    """Evaluate ``bundle_path`` on ``eval_dir`` in a confined child; never raises for the
    child's failures (they come back as ``Outcome.error``). ``pidfile`` receives the child's
    process group, for ``kill_stale`` should this process die during the evaluation."""
    use_bwrap = bwrap_available() if use_bwrap is None else use_bwrap
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1"}
    # -I drops PYTHONPATH, so the packages are found through the installation (pip install -e
    # records them in site-packages), exactly as the server finds them.
    args = [sys.executable, "-I", "-m", "tito.olympics.evaluate"]
    if use_bwrap:
        cmd = _bwrap_prefix([(str(Path(bundle_path).resolve().parent), "/tmp/in"),
                             (str(Path(eval_dir).resolve()), "/tmp/data")])
        cmd += args + [f"/tmp/in/{Path(bundle_path).name}", "/tmp/data"]
        how = "bwrap+rlimits"
    else:
        cmd, how = args + [str(bundle_path), str(eval_dir)], "rlimits"
    proc = subprocess.Popen(cmd, env=env, cwd=str(Path(bundle_path).parent), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_limits(memory_mb, int(timeout) + 1))
    if pidfile is not None:
        Path(pidfile).write_text(str(proc.pid))          # setsid: its pid is its process group
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return Outcome(None, f"stopped after {timeout:g} s (the evaluation time limit)", how)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    try:
        doc = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "error" in doc:
        return Outcome(None, str(doc["error"])[:2000], how)
    if proc.returncode == 0 and isinstance(doc, dict):
        return Outcome(doc, "", how)
    tail = (err or "").strip().splitlines()[-3:]
    if proc.returncode in (-signal.SIGKILL, -signal.SIGXCPU) or "MemoryError" in (err or ""):
        why = f"stopped by its limits ({memory_mb} MB of memory, {timeout:.0f} s of CPU)"
    else:
        why = f"the evaluation failed (exit code {proc.returncode})"
    return Outcome(None, why + (": " + " | ".join(tail) if tail else ""), how)
