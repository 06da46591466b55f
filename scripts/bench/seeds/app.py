"""The seeds' in-process design, rebuilt as a benchmark baseline (issue 24).

The two documents in shared/seeds/ describe a FastAPI service run by uvicorn
whose Camber client, with EXECUTION_BACKEND=local, is a MockCamberClient in
the same process: POST /jobs writes the job row (pending), submit_job()
returns a mock Camber id at once and spawns an asyncio task that "runs" the
worker pipeline (FETCH -> OCR -> NORMALIZE), then POSTs an HMAC-SHA256-signed
webhook to the service's own /internal/webhooks/camber, which verifies it,
moves the job to completed and packages its artifacts.

This file is that design and nothing more, with the HTTP surface that
api/examples/drive.rs uses against our `api` (api/openapi.yaml): POST /jobs
with the same body, answering 201 {job_id, status, upload_url}; GET
/jobs/{id} with `status`, `created_at` and `events[].at`; /healthz, /readyz.
It is not a second implementation of api: no uploads route, no reconciler,
no idempotency keys, no submit retries.

Choices the seeds leave open, each made to give the baseline its best fair
shot: one SQLite file in WAL mode with synchronous=FULL (the durability our
api and mock run with), one aiosqlite writer connection behind an
asyncio.Lock (SQLite takes one writer; the lock keeps two coroutines'
transactions apart) and one reader connection; uvicorn with uvloop and
httptools (`uvicorn[standard]`), access log off; one aiohttp ClientSession
kept open for the webhooks (with httpx, tried first, half of the GIL-holding
samples at c=64 were in its client; aiohttp changed c=64 by under 10 %). Configuration (environment): SEEDS_DB (file, default
./seeds.db), ARTIFACT_DIR (default: next to the db), WEBHOOK_SECRET,
STAGE_MS (per stage, default 0 like our bench's --stage-ms 0).

Run it with scripts/bench/seeds/run.sh, which prints `listening on URL`.
"""

import asyncio
import hashlib
import hmac
import json
import os
import socket
import sys
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import aiohttp
import aiosqlite
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

DB_PATH = os.environ.get("SEEDS_DB", "./seeds.db")
ARTIFACT_DIR = Path(os.environ.get("ARTIFACT_DIR") or Path(DB_PATH).resolve().parent / "artifacts")
# The seeds' default "dev" secret is only a local default; set WEBHOOK_SECRET to override.
WEBHOOK_SECRET = os.environ.get("WEBHOOK_SECRET", "dev-secret-12345").encode()
STAGE_MS = float(os.environ.get("STAGE_MS", "0"))
STAGES = ("FETCH", "OCR", "NORMALIZE")
WEBHOOK_PATH = "/internal/webhooks/camber"

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    portal_schema_name TEXT NOT NULL,
    filename TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    file_size_bytes INTEGER NOT NULL,
    camber_job_id TEXT,
    result TEXT,
    error TEXT,
    artifacts TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_events (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    from_status TEXT,
    to_status TEXT NOT NULL,
    at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def sign(body: bytes) -> str:
    return hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()


class Store:
    """One writer connection (transactions serialised by a lock) and one
    reader; aiosqlite runs each connection on its own thread."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    async def open(self) -> None:
        self.w = await aiosqlite.connect(DB_PATH, isolation_level=None)
        await self.w.execute("PRAGMA journal_mode = WAL")
        await self.w.execute("PRAGMA synchronous = FULL")
        await self.w.executescript(SCHEMA)
        self.r = await aiosqlite.connect(DB_PATH, isolation_level=None)
        self.r.row_factory = aiosqlite.Row

    async def close(self) -> None:
        await self.w.close()
        await self.r.close()

    async def write(self, statements: list[tuple[str, tuple]]) -> int:
        """Runs the statements in one transaction; returns the last rowcount."""
        async with self.lock:
            await self.w.execute("BEGIN IMMEDIATE")
            try:
                rows = 0
                for sql, args in statements:
                    cur = await self.w.execute(sql, args)
                    rows = cur.rowcount
                await self.w.execute("COMMIT")
                return rows
            except BaseException:
                await self.w.execute("ROLLBACK")
                raise

    # Reads run to the end in one hop (execute_fetchall): a statement left
    # half-stepped between two hops would hold the reader's snapshot open
    # while other coroutines read through it, and they would miss new rows.
    async def job(self, job_id: str) -> dict | None:
        rows = await self.r.execute_fetchall("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return dict(rows[0]) if rows else None

    async def events(self, job_id: str) -> list[dict]:
        rows = await self.r.execute_fetchall(
            "SELECT from_status, to_status, at, source FROM job_events WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [{"from": r[0], "to": r[1], "at": r[2], "source": r[3]} for r in rows]


def event(job_id: str, frm: str | None, to: str, at: str, source: str) -> tuple[str, tuple]:
    return (
        "INSERT INTO job_events (job_id, from_status, to_status, at, source) VALUES (?, ?, ?, ?, ?)",
        (job_id, frm, to, at, source),
    )


def event_if_changed(job_id: str, frm: str | None, to: str, at: str, source: str) -> tuple[str, tuple]:
    """The event of the UPDATE just before it, written only if that UPDATE
    changed the row (a webhook may overtake the submit's own update)."""
    return (
        "INSERT INTO job_events (job_id, from_status, to_status, at, source) "
        "SELECT ?, ?, ?, ?, ? WHERE changes() > 0",
        (job_id, frm, to, at, source),
    )


class MockCamberClient:
    """The seeds' MockCamberClient: submit_job returns at once and spawns the
    pipeline as a background task that ends with a signed webhook."""

    def __init__(self, store: Store, http: aiohttp.ClientSession) -> None:
        self.store, self.http = store, http
        self.tasks: set[asyncio.Task] = set()

    def submit_job(self, job_id: str, payload: dict) -> str:
        camber_job_id = f"mock-{uuid.uuid4().hex[:8]}"
        task = asyncio.create_task(self._process_job_async(job_id, camber_job_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return camber_job_id

    async def _process_job_async(self, job_id: str, camber_job_id: str) -> None:
        started = time.perf_counter()
        job = await self.store.job(job_id)  # "Load job payload"
        if job is None:
            print(f"[MOCK CAMBER] job {job_id} not found", file=sys.stderr)
            return
        for _stage in STAGES:
            await asyncio.sleep(STAGE_MS / 1000)
        result = self._generate_success_result(job_id, started)
        await self._send_webhook(
            {
                "camber_job_id": camber_job_id,
                "job_id": job_id,
                "status": "success",
                "timestamp": now(),
                "result": result,
            }
        )

    @staticmethod
    def _generate_success_result(job_id: str, started: float) -> dict:
        return {
            "status": "SUCCESS",
            "job_id": job_id,
            "result": {
                "structured": {"field_1": "mock_value_1", "field_2": "mock_value_2"},
                "confidence": {"field_1": 0.95, "field_2": 0.87},
                "quality_score": 0.92,
                "page_count": 1,
                "processing_time_ms": round((time.perf_counter() - started) * 1000),
            },
        }

    async def _send_webhook(self, payload: dict) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            async with self.http.post(
                WEBHOOK_PATH,
                data=body,
                headers={"Content-Type": "application/json", "X-Webhook-Secret": sign(body)},
            ) as res:
                await res.read()
                if res.status != 200:
                    print(f"[MOCK CAMBER] webhook answered {res.status}", file=sys.stderr)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            print(f"[MOCK CAMBER] webhook failed: {e!r}", file=sys.stderr)


@asynccontextmanager
async def lifespan(app: FastAPI):
    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    store = Store()
    await store.open()
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(app.state.self_url, connector=connector, timeout=timeout) as http:
        app.state.store = store
        app.state.camber = MockCamberClient(store, http)
        yield
    await store.close()


app = FastAPI(title="seeds in-process design (benchmark baseline)", lifespan=lifespan)
app.state.self_url = os.environ.get("SELF_URL", "http://127.0.0.1:8000")


@app.exception_handler(RequestValidationError)
async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    if first.get("type") == "json_invalid":
        return error(400, "INVALID_JSON", "the body is not valid JSON")
    return error(422, "INVALID_REQUEST", f"{field or 'body'}: {first.get('msg', 'invalid')}")


class CreateJob(BaseModel):
    portal_schema_name: str = Field(min_length=1, max_length=128, pattern=r"\S")
    filename: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
    mime_type: Literal["application/pdf", "image/png", "image/jpeg", "image/tiff", "image/webp"]
    file_size_bytes: int = Field(ge=1, le=26_214_400)


def upload_url(request: Request, job_id: str) -> str:
    expires = int(time.time()) + 3600
    signature = sign(f"{job_id}.{expires}".encode())
    return f"{request.base_url}jobs/{job_id}/upload?expires={expires}&signature={signature}"


@app.post("/jobs", status_code=201)
async def create_job(job: CreateJob, request: Request):
    store: Store = request.app.state.store
    job_id, at = str(uuid.uuid4()), now()
    await store.write(
        [
            (
                "INSERT INTO jobs (id, status, portal_schema_name, filename, mime_type, "
                "file_size_bytes, created_at, updated_at) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?)",
                (job_id, job.portal_schema_name, job.filename, job.mime_type, job.file_size_bytes, at, at),
            ),
            event(job_id, None, "pending", at, "submit"),
        ]
    )
    camber_job_id = request.app.state.camber.submit_job(job_id, job.model_dump())
    at = now()
    await store.write(
        [
            (
                "UPDATE jobs SET status = 'processing', camber_job_id = ?, updated_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (camber_job_id, at, job_id),
            ),
            event_if_changed(job_id, "pending", "processing", at, "submit"),
        ]
    )
    return {"job_id": job_id, "status": "processing", "upload_url": upload_url(request, job_id)}


@app.get("/jobs/{job_id}")
async def get_job(job_id: str, request: Request):
    store: Store = request.app.state.store
    job = await store.job(job_id)
    if job is None:
        return error(404, "NOT_FOUND", f"no job {job_id}")
    job = {"job_id": job.pop("id"), **job}
    for key in ("result", "error"):
        job[key] = json.loads(job[key]) if job[key] else None
    job["artifacts"] = [
        {"name": a["name"], "size": a["size"], "url": f"/jobs/{job_id}/artifacts/{a['name']}"}
        for a in json.loads(job["artifacts"])
    ]
    job["events"] = await store.events(job_id)
    return job


def package_artifacts(job_id: str, result: dict, status: str) -> list[dict]:
    """result.json and manifest.json under ARTIFACT_DIR/<job_id>/, renamed
    into place (not synced: the row's commit is the durable record, as in api)."""
    folder = ARTIFACT_DIR / job_id
    folder.mkdir(exist_ok=True)
    result_bytes = json.dumps(result).encode()
    manifest = {
        "job_id": job_id,
        "status": status,
        "files": [{"name": "result.json", "size": len(result_bytes),
                   "sha256": hashlib.sha256(result_bytes).hexdigest()}],
    }
    metas = []
    for name, data in (("result.json", result_bytes), ("manifest.json", json.dumps(manifest).encode())):
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
        metas.append({"name": name, "size": len(data)})
    return metas


@app.post(WEBHOOK_PATH)
async def webhook_camber(request: Request):
    body = await request.body()
    received = request.headers.get("X-Webhook-Secret", "")
    if not hmac.compare_digest(received, sign(body)):
        return error(401, "UNAUTHENTICATED", "invalid webhook signature")
    try:
        payload = json.loads(body)
        job_id, camber_job_id, outcome = payload["job_id"], payload["camber_job_id"], payload["status"]
    except (ValueError, KeyError, TypeError):
        return error(400, "INVALID_JSON", "not a webhook body")
    if outcome not in ("success", "failed"):
        return error(422, "INVALID_REQUEST", "status: not success/failed")
    store: Store = request.app.state.store
    job = await store.job(job_id)
    if job is None:
        return error(404, "NOT_FOUND", f"no job {job_id}")
    if job["camber_job_id"] not in (None, camber_job_id):
        return error(409, "CONFLICT", "camber_job_id disagrees with the stored one")
    if job["status"] in ("completed", "failed"):
        return {"acknowledged": True, "duplicate": True}
    to = "completed" if outcome == "success" else "failed"
    result = payload.get("result") or {}
    metas = package_artifacts(job_id, result, to)
    at = now()
    changed = await store.write(
        [
            (
                "UPDATE jobs SET status = ?, camber_job_id = ?, result = ?, error = ?, artifacts = ?, "
                "updated_at = ? WHERE id = ? AND status IN ('pending', 'processing')",
                (
                    to,
                    camber_job_id,
                    json.dumps(result) if to == "completed" else None,
                    json.dumps(result.get("error")) if to == "failed" else None,
                    json.dumps(metas),
                    at,
                    job_id,
                ),
            ),
            event_if_changed(job_id, job["status"], to, at, "webhook"),
        ]
    )
    return {"acknowledged": True, "duplicate": changed == 0}


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


@app.get("/readyz")
async def readyz(request: Request):
    store: Store = request.app.state.store
    await store.write([("SELECT 1", ())])
    return {"status": "ready"}


def main() -> None:
    import uvicorn

    host = "127.0.0.1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(os.environ.get("PORT", "0"))))
    sock.listen(1024)
    port = sock.getsockname()[1]
    # The seeds' `api_port` setting: where the in-process mock sends its webhooks.
    app.state.self_url = f"http://{host}:{port}"
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, loop="uvloop", http="httptools", lifespan="on"
    )
    print(f"listening on http://{host}:{port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
