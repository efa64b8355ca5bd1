"""``tito olympics``: pack, validate and submit bundles; run the leaderboard service.

Learners need NumPy only (pack, validate, submit). ``serve``, ``worker`` and ``admin`` need
the ``olympics`` extra: ``pip install 'tinytorch[olympics]'``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import typer

app = typer.Typer(help="The AI Olympics: pack a model as a bundle, validate it, submit it; "
                       "instructors run the leaderboard service.", no_args_is_help=True,
                  rich_markup_mode=None)
admin_app = typer.Typer(help="Instructors: accounts and the end of a competition.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(admin_app, name="admin")

DB_HELP = "Database URL: sqlite:///FILE (default olympics.db here) or postgresql://..."
DB_ENV = "TINYTORCH_OLYMPICS_DB"


def fail(message: str, code: int = 1):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _db_url(url: str | None) -> str:
    from .db import default_url  # needs sqlalchemy: only service commands call this
    return url or os.environ.get(DB_ENV) or default_url()


def _service():
    """The service modules, or a clear message when the extra is missing."""
    try:
        from . import db
    except ImportError as e:
        fail(f"this command needs the olympics extra ({e.name} is missing): "
             f"pip install 'tinytorch[olympics]'", 2)
    return db


def _floats(text: str | None, what: str):
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        fail(f"{what}: expected comma-separated numbers, got {text!r}", 2)


@app.command("pack")
def pack_cmd(
    model: str = typer.Option(..., help="FILE.py:NAME, a model object or a function returning one "
                                        "(your own code, run here on your machine)."),
    out: Path = typer.Option(..., "--out", "-o", help="The bundle file to write."),
    track: str = typer.Option(..., help="vision | language | speed | compression"),
    pseudonym: str = typer.Option(..., help="The name shown on the leaderboard."),
    weights: Path | None = typer.Option(None, help="An .npz of the model's state_dict to load first."),
    local: list[str] | None = typer.Option(None, help="A number you measured, KEY=VALUE "
                                                         "(repeatable); shown as yours, never ranked."),
    input_shape: str | None = typer.Option(None, help="Per-example input shape, e.g. 3,32,32 (Sequential)."),
    mean: str | None = typer.Option(None, help="Per-channel mean subtracted from inputs in 0..1."),
    std: str | None = typer.Option(None, help="Per-channel std inputs are divided by."),
    chars: Path | None = typer.Option(None, help="GPT: a JSON file with the list of characters, one per token id."),
    encoding: str = typer.Option("dense", help="dense | int8 | sparse: how weight matrices are stored."),
):
    """Write a submission bundle from your model (architecture as JSON, weights as .npz)."""
    import numpy as np

    from . import bundle

    file, _, name = model.rpartition(":")
    if not file or not name or not Path(file).is_file():
        fail(f"--model must be FILE.py:NAME with an existing FILE, got {model!r}", 2)
    spec = importlib.util.spec_from_file_location("olympics_model", file)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(Path(file).resolve().parent))
    spec.loader.exec_module(mod)
    obj = getattr(mod, name, None)
    if obj is None:
        fail(f"{file} defines no {name!r}", 2)
    net = obj() if callable(obj) and not hasattr(obj, "state_dict") else obj
    if weights is not None:
        with np.load(weights, allow_pickle=False) as z:
            net.load_state_dict({k: z[k] for k in z.files})
    measured = {}
    for item in local or []:
        key, sep, value = item.partition("=")
        try:
            measured[key] = float(value)
        except ValueError:
            fail(f"--local {item!r}: expected KEY=NUMBER", 2)
    char_list = json.loads(chars.read_text(encoding="utf-8")) if chars else None
    shape = [int(v) for v in _floats(input_shape, "--input-shape")] if input_shape else None
    try:
        b = bundle.pack(net, out, track, pseudonym, measured, input_shape=shape,
                        mean=_floats(mean, "--mean"), std=_floats(std, "--std"), chars=char_list,
                        encoding=encoding)
    except bundle.BundleError as e:
        fail(str(e))
    typer.echo(f"wrote {out}\n{bundle.summary(b)}")


@app.command("validate")
def validate_cmd(path: Path = typer.Argument(..., help="The bundle file.")):
    """Check a bundle exactly as the server will (without running it)."""
    from . import bundle

    try:
        b = bundle.load(path)
    except bundle.BundleError as e:
        fail(f"{path}: {e}")
    typer.echo(f"{path}: valid\n{bundle.summary(b)}")


def _request(url: str, token: str | None, data: bytes | None = None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("detail", "")
        except ValueError:
            detail = e.reason
        fail(f"the server refused ({e.code}): {detail}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"cannot reach {url}: {getattr(e, 'reason', e)}")


@app.command("submit")
def submit_cmd(
    path: Path = typer.Argument(..., help="The bundle file."),
    server: str = typer.Option(..., help="The service, e.g. http://127.0.0.1:8000"),
    token: str = typer.Option(..., help="Your token (from your instructor).", envvar="TINYTORCH_OLYMPICS_TOKEN"),
    wait: bool = typer.Option(False, help="Wait for the server's evaluation and print it."),
    timeout: float = typer.Option(600.0, help="With --wait: give up after this many seconds."),
):
    """Send a bundle to the leaderboard; the server re-measures it."""
    from . import bundle

    try:
        b = bundle.load(path)
    except bundle.BundleError as e:
        fail(f"{path}: {e}")
    base = server.rstrip("/")
    r = _request(f"{base}/api/submissions", token, path.read_bytes())
    typer.echo(f"submission {r['id']} queued: track {b.track}, pseudonym {b.pseudonym}, {r['bundle_bytes']:,} bytes")
    if not wait:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = _request(f"{base}/api/submissions/{r['id']}", token)
        if s["status"] in ("done", "failed"):
            if s["status"] == "failed":
                fail(f"submission {r['id']}: evaluation failed: {s['error']}")
            typer.echo(f"submission {r['id']} evaluated: score {s['score_public']} (public split)")
            return
        time.sleep(0.5)
    fail(f"submission {r['id']}: not evaluated after {timeout:.0f} s (still {s['status']})")


def _worker_args(eval_data: Path, timeout: float, memory_mb: int) -> list[str]:
    """The worker's command line; its database URL travels in the environment (DB_ENV), so
    that a password in it does not show in the process list."""
    return [sys.executable, "-m", "tito.olympics.cli", "worker", "--eval-data", str(eval_data),
            "--eval-timeout", str(timeout), "--eval-memory-mb", str(memory_mb)]


@app.command("serve")
def serve_cmd(
    db_url: str | None = typer.Option(None, "--db", help=DB_HELP),
    eval_data: Path | None = typer.Option(None, help="The evaluation set (see make-eval-data); "
                                                        "needed unless --no-worker."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    worker: bool = typer.Option(True, help="Start the evaluation worker as a child process."),
    max_upload_mb: float = typer.Option(16.0, help="Largest accepted bundle, MB."),
    eval_timeout: float = typer.Option(120.0, help="Seconds one evaluation may take."),
    eval_memory_mb: int = typer.Option(2048, help="Memory one evaluation may use, MB."),
):
    """Run the leaderboard web service (and, by default, its evaluation worker)."""
    _service()
    try:
        import uvicorn

        from .server import create_app
    except ImportError as e:
        fail(f"serve needs the olympics extra ({e.name} is missing): pip install 'tinytorch[olympics]'", 2)
    url = _db_url(db_url)
    app_ = create_app(url, int(max_upload_mb * 1024 * 1024))   # runs the migrations
    supervisor = None
    if worker:
        if eval_data is None or not eval_data.is_dir():
            fail("--eval-data DIR is needed to start the worker (or pass --no-worker)", 2)
        from .worker import Supervisor
        supervisor = Supervisor(_worker_args(eval_data.resolve(), eval_timeout, eval_memory_mb),
                                env=dict(os.environ, **{DB_ENV: url}),
                                log=lambda *a, **k: typer.echo(" ".join(map(str, a)), err=True)).start()
    typer.echo(f"olympics: serving on http://{host}:{port} (database {url.split('://')[0]}); "
               f"worker {'pid ' + str(supervisor.child.pid) if supervisor else 'not started'}", err=True)
    try:
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    finally:
        if supervisor is not None:
            supervisor.stop()


@app.command("worker")
def worker_cmd(
    db_url: str | None = typer.Option(None, "--db", help=DB_HELP),
    eval_data: Path = typer.Option(..., help="The evaluation set (see make-eval-data)."),
    eval_timeout: float = typer.Option(120.0, help="Seconds one evaluation may take."),
    eval_memory_mb: int = typer.Option(2048, help="Memory one evaluation may use, MB."),
    once: bool = typer.Option(False, help="Stop when the queue is empty."),
):
    """Evaluate queued submissions one at a time (run exactly one per database)."""
    _service()
    from . import worker

    try:
        n = worker.run(_db_url(db_url), eval_data, eval_timeout, eval_memory_mb, once=once,
                       log=lambda *a, **k: typer.echo(" ".join(map(str, a)), err=True))
    except (FileNotFoundError, worker.WorkerBusy) as e:
        fail(str(e), 2)
    typer.echo(f"worker: stopped after {n} evaluation(s)", err=True)


@app.command("make-eval-data")
def make_eval_data_cmd(
    out: Path = typer.Argument(..., help="Directory to write vision.npz / language.npz into."),
    vision: str = typer.Option("cifar10", help="cifar10 | tinydigits (bundled) | none"),
    cifar_root: Path | None = typer.Option(None, help="Directory holding cifar-10-batches-py/ "
                                                         "(default: $TINYTORCH_DATA)."),
    language: str = typer.Option("tinytalks", help="tinytalks (bundled: exact match) | shakespeare "
                                                   "(validation loss) | none"),
    shakespeare: Path | None = typer.Option(None, help="tinyshakespeare.txt (default: "
                                                          "$TINYTORCH_DATA/text/tinyshakespeare.txt)."),
    limit: int = typer.Option(0, help="Use at most this many examples per dataset (0: all)."),
    seed: int = typer.Option(0, help="Seed of the public/private shuffle."),
):
    """Write an evaluation set: each test split shuffled, half public, half private."""
    import numpy as np

    from tinytorch.data import datasets

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def halves(n):
        order = rng.permutation(n)[: limit or n]
        return order[: len(order) // 2], order[len(order) // 2:]
    if vision != "none":
        if vision == "cifar10":
            try:
                _, (x, y) = datasets.load_cifar10(root=cifar_root)
            except datasets.DatasetError as e:
                fail(f"CIFAR-10: {e}", 2)
        elif vision == "tinydigits":
            _, (x, y) = datasets.load_tinydigits()
            x = x[:, None]
        else:
            fail(f"--vision must be cifar10, tinydigits or none, got {vision!r}", 2)
        x = np.asarray(x)
        if x.dtype != np.uint8:
            x = np.clip(np.round(x * 255), 0, 255).astype(np.uint8) if x.max() <= 1.0 else x.astype(np.uint8)
        pub, priv = halves(len(y))
        np.savez_compressed(out / "vision.npz", x_public=x[pub], y_public=np.asarray(y)[pub].astype(np.int64),
                            x_private=x[priv], y_private=np.asarray(y)[priv].astype(np.int64))
        typer.echo(f"{out / 'vision.npz'}: {vision}, {len(pub)} public + {len(priv)} private, shape {list(x.shape[1:])}")
    if language == "tinytalks":
        _, _, (q, a) = datasets.load_tinytalks()
        pub, priv = halves(len(q))
        np.savez_compressed(out / "language.npz", q_public=q[pub], a_public=a[pub], q_private=q[priv], a_private=a[priv])
        typer.echo(f"{out / 'language.npz'}: TinyTalks test, {len(pub)} public + {len(priv)} private")
    elif language == "shakespeare":
        path = shakespeare or Path(os.environ.get("TINYTORCH_DATA", "."), "text", "tinyshakespeare.txt")
        if not path.is_file():
            fail(f"{path} not found: pass --shakespeare FILE or set TINYTORCH_DATA", 2)
        text = path.read_text(encoding="utf-8")
        val = text[int(0.9 * len(text)):]                 # nanoGPT's validation part: the last 10 %
        half = len(val) // 2
        pub, priv = val[:half], val[half:]
        if limit:
            pub, priv = pub[:limit], priv[:limit]
        np.savez_compressed(out / "language.npz", text_public=np.array(pub), text_private=np.array(priv))
        typer.echo(f"{out / 'language.npz'}: Shakespeare validation text, {len(pub):,} public + "
                   f"{len(priv):,} private characters")
    elif language != "none":
        fail(f"--language must be tinytalks, shakespeare or none, got {language!r}", 2)


@admin_app.command("add-user")
def add_user_cmd(
    name: str = typer.Argument(..., help="The student's (or instructor's) name, for you only."),
    db_url: str | None = typer.Option(None, "--db", help=DB_HELP),
    admin: bool = typer.Option(False, help="An instructor: may export the CSV."),
    daily_limit: int = typer.Option(10, help="Submissions allowed per UTC day."),
):
    """Create an account and print its token (stored hashed: it cannot be shown again)."""
    db = _service()
    if not 1 <= len(name) <= 64:
        fail("the name must be 1-64 characters", 2)
    try:
        token = db.add_user(db.connect(_db_url(db_url)), name, admin, daily_limit)
    except ValueError as e:
        fail(str(e))
    typer.echo(token)


@admin_app.command("list-users")
def list_users_cmd(db_url: str | None = typer.Option(None, "--db", help=DB_HELP)):
    """The accounts (never their tokens)."""
    db = _service()
    for u in db.list_users(db.connect(_db_url(db_url))):
        typer.echo(f"{u.id}\t{u.name}\t{'instructor' if u.is_admin else 'student'}\t{u.daily_limit}/day")


@admin_app.command("reveal")
def reveal_cmd(db_url: str | None = typer.Option(None, "--db", help=DB_HELP),
               hide: bool = typer.Option(False, help="Go back to ranking on the public split.")):
    """End of the competition: rank on the private split (shown to everyone)."""
    db = _service()
    db.set_setting(db.connect(_db_url(db_url)), "revealed", "no" if hide else "yes")
    typer.echo(f"leaderboards now rank on the {'public' if hide else 'private'} split")


if __name__ == "__main__":
    app()
