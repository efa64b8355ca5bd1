"""The Olympics database: users, submissions, settings (SQLAlchemy Core; schema by Alembic).

SQLite (a file) by default, PostgreSQL through its URL. ``connect(url)`` brings the schema up
to date with the migrations in ``migrations/`` before anything else touches it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from .evaluate import TRACK_SCORES, score_order

metadata = sa.MetaData()
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("daily_limit", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
submissions = sa.Table(
    "submissions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("track", sa.String(16), nullable=False),
    sa.Column("pseudonym", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),      # queued | running | done | failed
    sa.Column("bundle", sa.LargeBinary, nullable=False),
    sa.Column("bundle_bytes", sa.Integer, nullable=False),
    sa.Column("bundle_sha256", sa.String(64), nullable=False),
    sa.Column("local_json", sa.Text, nullable=False),          # the learner's own numbers
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("attempts", sa.Integer, nullable=False),         # evaluations started
    sa.Column("evaluations", sa.Integer, nullable=False),      # evaluations finished
    sa.Column("error", sa.Text),
    sa.Column("score_public", sa.Float),
    sa.Column("score_private", sa.Float),
    sa.Column("result_json", sa.Text),
    sa.Column("sandbox", sa.String(32)),
)
settings = sa.Table(
    "settings", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
SUMMARY = [c for c in submissions.c if c.name != "bundle"]   # every column but the blob
MIGRATIONS = Path(__file__).with_name("migrations")


class LimitError(RuntimeError):
    """A user's daily submission limit is used up."""


class PseudonymTaken(RuntimeError):
    """Another user submits under this pseudonym."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def hash_token(token: str) -> str:
    """Tokens are 32 random bytes: one SHA-256 is enough (no dictionary to guess from)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")       # readers never wait for the writer
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")       # a kill -9 loses no committed row
            cur.close()
        return engine
    if url.startswith(("postgresql://", "postgres://")):   # the psycopg 3 driver, not psycopg2
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(url, pool_pre_ping=True)


def migrate(engine: sa.Engine) -> None:
    """Apply every Alembic migration not yet applied."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def connect(url: str) -> sa.Engine:
    engine = engine_for(url)
    migrate(engine)
    return engine


def default_url(path: str = "olympics.db") -> str:
    return f"sqlite:///{Path(path).resolve()}"


class WorkerLock:
    """Held by the one worker of a database, released when it exits or dies: a lock file
    beside a SQLite database (flock), a session advisory lock on PostgreSQL."""

    KEY = 2026_0020   # the advisory lock's number: any constant of our own

    def __init__(self, engine):
        self.engine, self._file, self._conn = engine, None, None

    def acquire(self) -> bool:
        if self.engine.dialect.name == "sqlite":
            import fcntl

            path = self.engine.url.database
            self._file = open(f"{path}.worker.lock" if path and path != ":memory:" else "/dev/null", "a")
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError:
                self._file.close()
                return False
        self._conn = self.engine.connect()
        ok = bool(self._conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.KEY}).scalar())
        if not ok:
            self._conn.close()
        return ok

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._conn is not None:
            self._conn.close()


# ---- users ----------------------------------------------------------------------------------
def add_user(engine, name: str, admin: bool = False, daily_limit: int = 10) -> str:
    """Create a user; returns the token (only its hash is stored: print it now or lose it)."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as c:
        if c.execute(sa.select(users.c.id).where(users.c.name == name)).first():
            raise ValueError(f"a user named {name!r} exists already")
        c.execute(users.insert().values(name=name, token_hash=hash_token(token), is_admin=admin,
                                        daily_limit=daily_limit, created_at=now()))
    return token


def user_for_token(engine, token: str | None):
    if not token:
        return None
    with engine.connect() as c:
        return c.execute(sa.select(users).where(users.c.token_hash == hash_token(token))).first()


def list_users(engine) -> list:
    with engine.connect() as c:
        return list(c.execute(sa.select(users.c.id, users.c.name, users.c.is_admin, users.c.daily_limit)
                              .order_by(users.c.id)))


# ---- submissions ----------------------------------------------------------------------------
_submit_lock = threading.Lock()   # count-then-insert of the daily limit, within this server


def create_submission(engine, user, b, data: bytes) -> int:
    """Store a validated bundle ``b`` (raw ``data``) queued for evaluation; returns its id."""
    today = now().replace(hour=0, minute=0, second=0, microsecond=0)
    with _submit_lock, engine.begin() as c:
        used = c.execute(sa.select(sa.func.count()).select_from(submissions).where(
            submissions.c.user_id == user.id, submissions.c.created_at >= today)).scalar_one()
        owner = c.execute(sa.select(submissions.c.user_id).where(
            submissions.c.pseudonym == b.pseudonym, submissions.c.user_id != user.id).limit(1)).first()
        if owner is not None:
            raise PseudonymTaken(f"the pseudonym {b.pseudonym!r} belongs to another participant: "
                                 f"choose another (pack --pseudonym)")
        if used >= user.daily_limit:
            raise LimitError(f"daily limit reached: {used} of {user.daily_limit} submissions today "
                             f"(UTC); try again tomorrow")
        return c.execute(submissions.insert().values(
            user_id=user.id, track=b.track, pseudonym=b.pseudonym, status="queued", bundle=data,
            bundle_bytes=len(data), bundle_sha256=hashlib.sha256(data).hexdigest(),
            local_json=json.dumps(b.local, sort_keys=True), created_at=now(), attempts=0,
            evaluations=0)).inserted_primary_key[0]


def get_submission(engine, sid: int):
    with engine.connect() as c:
        return c.execute(sa.select(*SUMMARY).where(submissions.c.id == sid)).first()


def all_submissions(engine) -> list:
    with engine.connect() as c:
        return list(c.execute(sa.select(*SUMMARY, users.c.name.label("user"))
                              .join(users, users.c.id == submissions.c.user_id).order_by(submissions.c.id)))


def counts(engine) -> dict:
    with engine.connect() as c:
        rows = c.execute(sa.select(submissions.c.status, sa.func.count()).group_by(submissions.c.status))
        return {status: n for status, n in rows}


def reset_running(engine) -> int:
    """Put back in the queue what a worker that died was evaluating; returns how many."""
    with engine.begin() as c:
        return c.execute(submissions.update().where(submissions.c.status == "running")
                         .values(status="queued", started_at=None)).rowcount


def claim_next(engine):
    """Mark the oldest queued submission as running; returns ``(id, bundle bytes)`` or None."""
    while True:
        with engine.begin() as c:
            row = c.execute(sa.select(submissions.c.id).where(submissions.c.status == "queued")
                            .order_by(submissions.c.id).limit(1)).first()
            if row is None:
                return None
            n = c.execute(submissions.update().where(submissions.c.id == row.id, submissions.c.status == "queued")
                          .values(status="running", started_at=now(), attempts=submissions.c.attempts + 1)).rowcount
            if n == 1:
                data = c.execute(sa.select(submissions.c.bundle).where(submissions.c.id == row.id)).scalar_one()
                return row.id, data


def finish(engine, sid: int, result: dict | None, error: str, sandbox: str) -> None:
    """Record an evaluation's outcome (only if the submission is still marked running)."""
    values = dict(finished_at=now(), evaluations=submissions.c.evaluations + 1, sandbox=sandbox)
    if result is None:
        values.update(status="failed", error=error)
    else:
        values.update(status="done", error=None, result_json=json.dumps(result, sort_keys=True),
                      score_public=result["public"].get("score"), score_private=result["private"].get("score"))
    with engine.begin() as c:
        c.execute(submissions.update().where(submissions.c.id == sid, submissions.c.status == "running")
                  .values(**values))


# ---- settings and the leaderboard -----------------------------------------------------------
def get_setting(engine, key: str, default: str = "") -> str:
    with engine.connect() as c:
        v = c.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar()
        return default if v is None else v


def set_setting(engine, key: str, value: str) -> None:
    with engine.begin() as c:
        if c.execute(sa.select(settings.c.key).where(settings.c.key == key)).first():
            c.execute(settings.update().where(settings.c.key == key).values(value=value))
        else:
            c.execute(settings.insert().values(key=key, value=value))


def leaderboard(engine, track: str, split: str = "public") -> list[dict]:
    """The best evaluated submission of every user on ``track``, best first, ranked by the
    server-measured score on ``split`` (public or private)."""
    col = submissions.c.score_public if split == "public" else submissions.c.score_private
    with engine.connect() as c:
        rows = list(c.execute(
            sa.select(*SUMMARY, users.c.name.label("user")).join(users, users.c.id == submissions.c.user_id)
            .where(submissions.c.track == track, submissions.c.status == "done", col.is_not(None))))
        tried = dict(c.execute(sa.select(submissions.c.user_id, sa.func.count()).where(
            submissions.c.track == track).group_by(submissions.c.user_id)).all())
    best = {}
    for r in rows:
        score = r.score_public if split == "public" else r.score_private
        result = json.loads(r.result_json)
        key = (score_order(track, score, result.get("higher_is_better")), r.created_at, r.id)
        if r.user_id not in best or key < best[r.user_id][0]:
            best[r.user_id] = (key, r, score, result)
    out = []
    for rank, (_, r, score, result) in enumerate(sorted(best.values(), key=lambda t: t[0]), start=1):
        out.append({"rank": rank, "pseudonym": r.pseudonym, "score": score, "submission": r.id,
                    "metric": result.get("metric", TRACK_SCORES[track][0]),
                    "user": r.user, "submissions": tried.get(r.user_id, 0),
                    "accuracy": result[split].get("accuracy", result[split].get("exact_match")),
                    "bundle_bytes": r.bundle_bytes, "reported_locally": json.loads(r.local_json),
                    "evaluated_at": r.finished_at.isoformat(timespec="seconds") + "Z", "sandbox": r.sandbox})
    return out
