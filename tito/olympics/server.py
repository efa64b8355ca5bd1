"""The Olympics web service (FastAPI): submissions in, leaderboards out.

    POST /api/submissions            a bundle as the request body, ``Authorization: Bearer TOKEN``
    GET  /api/submissions/{id}       its status and scores (its owner or an instructor)
    GET  /api/leaderboard/{track}    JSON, best submission per user, server-measured scores only
    GET  /                           the four leaderboards as a page (no JavaScript)
    GET  /api/export.csv             every submission, for instructors (an admin token)
    GET  /docs, /openapi.json        the API's documentation

Needs the ``olympics`` extra (``pip install 'tinytorch[olympics]'``). The worker that scores
submissions is a separate process (``worker.py``).
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from . import bundle as bundle_mod
from . import db
from .evaluate import TRACK_SCORES

TRACK_TITLES = {"vision": "Vision: CIFAR-10 accuracy", "language": "Language: TinyTalks exact match",
                "speed": "Speed: single-stream p90 latency", "compression": "Compression: bundle size"}
_templates = Environment(loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
                         autoescape=select_autoescape(["html"]))


def format_score(track: str, score, metric: str = "") -> str:
    if score is None:
        return "-"
    if metric == "val_loss":
        return f"{score:.3f} nats/char"
    if track in ("vision", "language"):
        return f"{100 * score:.1f} %"
    if track == "speed":
        return f"{score:.2f} ms"
    return f"{score / 1024:.1f} KiB"


def create_app(url: str, max_upload_bytes: int = bundle_mod.MAX_BUNDLE_BYTES) -> FastAPI:
    engine = db.connect(url)
    app = FastAPI(title="TinyTorch AI Olympics",
                  description="Submit a model bundle (`tito olympics submit`); the server re-measures "
                              "it on its own evaluation set. Only server-measured scores rank.")

    def auth(request: Request, admin: bool = False):
        header = request.headers.get("authorization", "")
        if not header:
            raise HTTPException(401, "missing token: pass --token (HTTP header Authorization: Bearer TOKEN)")
        scheme, _, token = header.partition(" ")
        user = db.user_for_token(engine, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HTTPException(401, "unknown token: ask your instructor for yours")
        if admin and not user.is_admin:
            raise HTTPException(403, "this needs an instructor's token")
        return user

    def split() -> str:
        return "private" if db.get_setting(engine, "revealed") == "yes" else "public"

    def board(track: str) -> list[dict]:
        if track not in TRACK_SCORES:
            raise HTTPException(404, f"unknown track {track!r}; tracks: {list(TRACK_SCORES)}")
        rows = db.leaderboard(engine, track, split())
        for r in rows:
            r.pop("user")          # pseudonyms only, in public
            r["score_text"] = format_score(track, r["score"], r["metric"])
        return rows

    @app.post("/api/submissions", status_code=201, summary="Submit a bundle (the raw file as the body)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def submit(request: Request):
        user = await run_in_threadpool(auth, request)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_upload_bytes:
            raise HTTPException(413, f"upload of {int(declared):,} bytes is larger than the limit "
                                     f"{max_upload_bytes:,}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_upload_bytes:
                raise HTTPException(413, f"upload larger than the limit {max_upload_bytes:,} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
        try:
            b = await run_in_threadpool(bundle_mod.load_bytes, data, max_upload_bytes)
        except bundle_mod.BundleError as e:
            raise HTTPException(422, f"invalid bundle: {e}") from None
        try:
            sid = await run_in_threadpool(db.create_submission, engine, user, b, data)
        except db.LimitError as e:
            raise HTTPException(429, str(e)) from None
        except db.PseudonymTaken as e:
            raise HTTPException(409, str(e)) from None
        return {"id": sid, "status": "queued", "track": b.track, "pseudonym": b.pseudonym,
                "bundle_bytes": len(data)}

    @app.get("/api/submissions/{sid}", summary="A submission's status and server-measured scores")
    def submission(sid: int, request: Request):
        user = auth(request)
        row = db.get_submission(engine, sid)
        if row is None or (row.user_id != user.id and not user.is_admin):
            raise HTTPException(404, f"no submission {sid} of yours")
        revealed = split() == "private" or user.is_admin     # private scores stay hidden until the end
        result = json.loads(row.result_json) if row.result_json else None
        if result is not None and not revealed:
            result.pop("private")
        return {"id": row.id, "status": row.status, "track": row.track, "pseudonym": row.pseudonym,
                "score_public": row.score_public, "score_private": row.score_private if revealed else None,
                "error": row.error, "attempts": row.attempts, "evaluations": row.evaluations,
                "result": result, "reported_locally": json.loads(row.local_json), "sandbox": row.sandbox}

    @app.get("/api/leaderboard/{track}", summary="One track's leaderboard (best per user)")
    def leaderboard(track: str):
        entries = board(track)
        metric, higher = TRACK_SCORES[track]
        if entries and entries[0]["metric"] == "val_loss":
            metric, higher = "val_loss", False
        return {"track": track, "split": split(), "metric": metric, "higher_is_better": higher,
                "entries": entries}

    @app.get("/", response_class=HTMLResponse, summary="The four leaderboards as a page")
    def page():
        tracks = []
        for t in TRACK_SCORES:
            rows = board(t)
            title = TRACK_TITLES[t]
            if rows and rows[0]["metric"] == "val_loss":
                title = "Language: Shakespeare validation loss"
            tracks.append({"key": t, "title": title, "rows": rows})
        html = _templates.get_template("leaderboard.html").render(
            tracks=tracks, split=split(), counts=db.counts(engine))
        return HTMLResponse(html)

    @app.get("/api/export.csv", summary="Every submission as CSV (instructors)")
    def export(request: Request):
        auth(request, admin=True)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["id", "user", "pseudonym", "track", "status", "score_public", "score_private",
                    "bundle_bytes", "reported_locally", "created_at", "finished_at", "attempts", "error"])
        for r in db.all_submissions(engine):
            w.writerow([r.id, r.user, r.pseudonym, r.track, r.status, r.score_public, r.score_private,
                        r.bundle_bytes, r.local_json, r.created_at.isoformat(timespec="seconds"),
                        r.finished_at.isoformat(timespec="seconds") if r.finished_at else "",
                        r.attempts, r.error or ""])
        return Response(out.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": "attachment; filename=olympics.csv"})

    @app.get("/healthz", summary="Liveness and queue counts")
    def health():
        return {"ok": True, "submissions": db.counts(engine)}

    return app
