"""HTTP clients of a running mock-camber: `Camber` (one tenant) and `Admin` (`/_mock/`).

Every wait is one of the mock's long-polls (`wait_for`/`wait_ms`,
`min_count`/`wait_ms`): the mock answers the moment the thing waited for
happens, so nothing here sleeps or polls in a loop.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import httpx

from .views import (
    AdminJob,
    AuditReport,
    DeliveryRecord,
    Job,
    JobStory,
    JournalEntry,
    RuntimeConfig,
)

# The mock's longest single wait; longer timeouts are several waits in a row.
MAX_WAIT_MS = 60_000
# Headroom over `wait_ms` for the HTTP request itself.
REQUEST_MARGIN_S = 5.0


class MockCamberError(Exception):
    """The mock answered something other than what the call expects."""

    def __init__(self, message: str, response: Optional[httpx.Response] = None) -> None:
        super().__init__(message)
        self.response = response


class WaitTimeout(MockCamberError, AssertionError):
    """A long-poll ran out before what it waited for happened (the mock's 408)."""


class JobEndedOtherwise(MockCamberError, AssertionError):
    """The job ended in another state and can never reach the one waited for (409)."""


def _error_text(r: httpx.Response) -> str:
    try:
        err = r.json().get("error", {})
        return f"{err.get('code')}: {err.get('message')}"
    except Exception:  # not JSON: say what it was
        return r.text[:200]


def _params(**kw: Any) -> Dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


class _Http:
    """One shared connection pool; each call names its own credentials."""

    def __init__(self, url: str, verify: Any = None) -> None:
        self.url = url.rstrip("/")
        # Over plain http no TLS context is needed, and loading the CA bundle
        # costs 60-120 ms: the bulk of a session's start-up.
        if verify is None:
            verify = self.url.startswith("https:")
        self.client = httpx.Client(base_url=self.url, timeout=REQUEST_MARGIN_S * 2, verify=verify)

    def request(
        self,
        method: str,
        path: str,
        token: Optional[str],
        *,
        wait_ms: int = 0,
        ok: Sequence[int] = (200,),
        **kw: Any,
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = wait_ms / 1000 + REQUEST_MARGIN_S
        r = self.client.request(method, path, headers=headers, timeout=timeout, **kw)
        if r.status_code in ok:
            return r
        if r.status_code == 401:
            raise MockCamberError(
                f"{method} {path}: 401 {_error_text(r)} — the mock at {self.url} refuses this "
                "credential (started with --api-key or --admin-token? set MOCK_CAMBER_API_KEY / "
                "MOCK_CAMBER_ADMIN_TOKEN)",
                r,
            )
        raise MockCamberError(f"{method} {path}: {r.status_code} {_error_text(r)}", r)

    def close(self) -> None:
        self.client.close()


def _waits(timeout: float) -> Iterator[int]:
    """The `wait_ms` of each long-poll needed to cover `timeout` seconds (at least one)."""
    deadline = time.monotonic() + timeout
    while True:
        left = max(0, int((deadline - time.monotonic()) * 1000))
        yield min(left, MAX_WAIT_MS)
        if left <= MAX_WAIT_MS:
            return


def new_api_key() -> str:
    """A key no one has used: on a mock started without --api-key, a new tenant."""
    return "mc-test-" + secrets.token_hex(12)


class Camber:
    """A client of one tenant of the Camber job API (its API key).

    `submitted` lists the ids of the jobs submitted through it, in order.
    """

    def __init__(
        self, url: str, key: Optional[str] = None, *, http: Optional[_Http] = None, admin: Optional["Admin"] = None
    ) -> None:
        self._http = http or _Http(url)
        self.url = self._http.url
        self.key = key or new_api_key()
        self.admin = admin
        self.submitted: List[str] = []

    def _admin(self) -> "Admin":
        if self.admin is None:
            raise MockCamberError("this Camber client was made without an Admin (pass admin=)")
        return self.admin

    def rules(self, *rules: Dict[str, Any]) -> "contextlib.AbstractContextManager[RuntimeConfig]":
        """Scenario rules that apply to this tenant's submits only, for a `with` block."""
        return self._admin().rules(*({"match": {}, **r, "tenant": self.key} for r in rules))

    def hold(self) -> "contextlib.AbstractContextManager[RuntimeConfig]":
        """Hold this tenant's jobs submitted in the `with` block (`running` until advanced)."""
        return self._admin().hold(tenant=self.key)

    def submit(
        self,
        *,
        app: str = "pytest",
        input: Optional[Dict[str, Any]] = None,
        webhook: Any = None,
        mock: Optional[Dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        **fields: Any,
    ) -> Job:
        """Submit a job and answer its view (`POST /jobs`, then `GET /jobs/{id}`).

        `webhook` is a URL, a `{"url", "headers"}` dict, or anything with a
        `.url` (a `webhook_receiver`); `mock` is the job's scenario
        (`metadata.mock`: `outcome`, `error`, `hold`, `stage_ms`, `webhook`…);
        other fields (`metadata`) go into the body as they are.
        """
        body: Dict[str, Any] = {"app": app, "input": {} if input is None else input, **fields}
        if webhook is not None:
            if isinstance(webhook, str):
                body["webhook"] = {"url": webhook}
            elif isinstance(webhook, dict):
                body["webhook"] = webhook
            else:
                body["webhook"] = {"url": webhook.url}
        if mock is not None:
            body["metadata"] = {**(body.get("metadata") or {}), "mock": mock}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        r = self._http.request("POST", "/jobs", self.key, json=body, headers=headers, ok=(200, 201))
        job_id = r.json()["id"]
        if job_id not in self.submitted:
            self.submitted.append(job_id)
        return self.job(job_id)

    def job(self, id: str) -> Job:
        return Job.from_json(self._http.request("GET", f"/jobs/{id}", self.key).json())

    def wait_for_job(self, id: str, status: str = "terminal", timeout: float = 10) -> Job:
        """The job once it is `status` (running, completed, failed or terminal).

        One long-poll (`wait_for`/`wait_ms`): it answers the moment the job gets
        there. Raises `WaitTimeout` after `timeout` seconds, and
        `JobEndedOtherwise` at once when the job ended in another state.
        """
        for wait_ms in _waits(timeout):
            r = self._http.request(
                "GET",
                f"/jobs/{id}",
                self.key,
                params={"wait_for": status, "wait_ms": wait_ms},
                wait_ms=wait_ms,
                ok=(200, 408, 409),
            )
            if r.status_code == 200:
                return Job.from_json(r.json())
            job = Job.from_json(r.json()["job"])
            if r.status_code == 409:
                raise JobEndedOtherwise(
                    f"job {id} ended {job.status} ({_describe(job)}); it will never be {status}", r
                )
        raise WaitTimeout(f"job {id} not {status} within {timeout} s: it is {_describe(job)}", r)

    def list_jobs(
        self, *, status: Optional[str] = None, app: Optional[str] = None, limit: Optional[int] = None
    ) -> List[Job]:
        """The tenant's jobs, newest first: every page, or the first `limit`."""
        jobs: List[Job] = []
        cursor: Optional[str] = None
        while True:
            page = self._http.request(
                "GET", "/jobs", self.key, params=_params(status=status, app=app, limit=limit, cursor=cursor)
            ).json()
            jobs += [Job.from_json(j) for j in page["jobs"]]
            cursor = page["next"]
            if cursor is None or (limit is not None and len(jobs) >= limit):
                return jobs[:limit] if limit is not None else jobs

    def cancel(self, id: str) -> Job:
        return Job.from_json(self._http.request("POST", f"/jobs/{id}/cancel", self.key).json())

    def logs(self, id: str, tail: Optional[int] = None) -> str:
        return self._http.request("GET", f"/jobs/{id}/logs", self.key, params=_params(tail=tail)).text

    def audit(
        self,
        job_id: str,
        state_url: Optional[str] = None,
        state_pointer: Optional[str] = None,
        timeout: float = 120,
    ) -> AuditReport:
        """Audit the webhook receiver of job `job_id` and wait for the report (see `Admin.audit`)."""
        return self._admin().audit(job_id, state_url, state_pointer, timeout=timeout)

    def audits(self, job_id: str) -> List[AuditReport]:
        """The audit reports of job `job_id`, newest first."""
        return self._admin().audits(job_id=job_id)

    def __repr__(self) -> str:
        return f"Camber(url={self.url!r}, key={self.key!r})"


def _describe(job: Job) -> str:
    s = job.status + (f" in {job.stage}" if job.stage else "")
    if job.error:
        s += f", error {job.error.code} at {job.error.stage}"
    return s


class Admin:
    """The admin API (`/_mock/…`): every tenant's jobs, deliveries, requests, config, controls."""

    def __init__(
        self, url: str, admin_token: Optional[str] = None, *, http: Optional[_Http] = None, verify: Any = None
    ) -> None:
        """`verify`: for an https mock, False, a CA bundle path or an `ssl.SSLContext` (httpx's `verify`)."""
        self._http = http or _Http(url, verify)
        self.url = self._http.url
        self.admin_token = admin_token

    def _req(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self._http.request(method, path, self.admin_token, **kw)

    def tenant(self, key: Optional[str] = None) -> Camber:
        """A client of tenant `key` (default: a new one) sharing this connection pool."""
        return Camber(self.url, key, http=self._http, admin=self)

    # --- configuration -----------------------------------------------------------
    def reset(self) -> None:
        """Forget every tenant's jobs, deliveries and the journal (the config stays)."""
        self._req("POST", "/_mock/reset")

    def config(self) -> RuntimeConfig:
        return RuntimeConfig.from_json(self._req("GET", "/_mock/config").json())

    def set_config(self, **patch: Any) -> RuntimeConfig:
        """Change the fields named (`stage_ms`, `failure_rate`, `submit_error_rate`, `latency_ms`, `rules`)."""
        return RuntimeConfig.from_json(self._req("PUT", "/_mock/config", json=patch).json())

    @contextlib.contextmanager
    def rules(self, *rules: Dict[str, Any], **patch: Any) -> Iterator[RuntimeConfig]:
        """Scenario rules (ahead of those in force) and other config for a `with` block.

        The whole previous configuration is put back on leaving it.
        """
        before = self.config()
        try:
            yield self.set_config(**patch, rules=[*rules, *before.rules])
        finally:
            self.set_config(**before.as_patch())

    def hold(
        self, *, tenant: Optional[str] = None, match: Optional[Dict[str, Any]] = None
    ) -> "contextlib.AbstractContextManager[RuntimeConfig]":
        """Hold every job submitted in the `with` block (of `tenant` / matching `match`):
        each stays `running` until `advance`, `complete`, `fail` or a cancel moves it."""
        rule: Dict[str, Any] = {"match": match or {}, "scenario": {"hold": True}}
        if tenant is not None:
            rule["tenant"] = tenant
        elif not match:
            rule["match"] = {"/app": "/./"}  # every job: a rule must narrow something
        return self.rules(rule)

    # --- a job's controls ----------------------------------------------------------
    def job(self, id: str) -> JobStory:
        """One job's whole story, any tenant's: plan, stage timeline, log, deliveries."""
        return JobStory.from_json(self._req("GET", f"/_mock/jobs/{id}").json())

    def advance(self, id: str) -> AdminJob:
        return AdminJob.from_json(self._req("POST", f"/_mock/jobs/{id}/advance").json())

    def complete(self, id: str, result: Optional[Dict[str, Any]] = None) -> AdminJob:
        body = {"result": result} if result is not None else None
        return AdminJob.from_json(self._req("POST", f"/_mock/jobs/{id}/complete", json=body).json())

    def fail(
        self, id: str, code: Optional[str] = None, *, stage: Optional[str] = None, reason: Optional[str] = None
    ) -> AdminJob:
        body = _params(code=code, stage=stage, reason=reason)
        return AdminJob.from_json(self._req("POST", f"/_mock/jobs/{id}/fail", json=body).json())

    def cancel(self, id: str) -> AdminJob:
        return AdminJob.from_json(self._req("POST", f"/_mock/jobs/{id}/cancel").json())

    def redeliver(self, delivery_id: str) -> str:
        """Send a delivery's event again now (same delivery id, one more attempt); its new state."""
        return str(self._req("POST", f"/_mock/deliveries/{delivery_id}/redeliver", ok=(202,)).json()["state"])

    def redeliver_dead(self, job_id: str) -> List[str]:
        """Send every dead delivery of a job again; the ids queued."""
        return list(self._req("POST", f"/_mock/jobs/{job_id}/redeliver", ok=(202,)).json()["redelivered"])

    # --- lists, each a long-poll when given min_count or timeout -------------------------
    def _list(self, path: str, key: str, params: Dict[str, Any], min_count: Optional[int], timeout: Optional[float]) -> List[Any]:
        params = _params(**params, min_count=min_count)
        waits = _waits(timeout) if timeout is not None else iter([None])
        for wait_ms in waits:
            r = self._req(
                "GET", path, params=_params(**params, wait_ms=wait_ms), wait_ms=wait_ms or 0, ok=(200, 408)
            )
            if r.status_code == 200:
                return list(r.json()[key])
        got = r.json().get(key, [])
        raise WaitTimeout(
            f"GET {path} {params}: {len(got)} of the {min_count or 1} waited for within {timeout or 0} s", r
        )

    def jobs(
        self,
        *,
        tenant: Optional[str] = None,
        status: Optional[str] = None,
        app: Optional[str] = None,
        q: Optional[str] = None,
        limit: Optional[int] = None,
        min_count: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> List[AdminJob]:
        """Jobs of every tenant (or one: its key), newest first; waits for `min_count` matches up to `timeout` s."""
        params = dict(tenant=tenant, status=status, app=app, q=q, limit=limit)
        return [AdminJob.from_json(j) for j in self._list("/_mock/jobs", "jobs", params, min_count, timeout)]

    def deliveries(
        self,
        *,
        job_id: Optional[str] = None,
        state: Optional[str] = None,
        event: Optional[str] = None,
        limit: Optional[int] = None,
        min_count: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> List[DeliveryRecord]:
        """Webhook deliveries and their attempts; waits for `min_count` matches up to `timeout` s."""
        params = dict(job_id=job_id, state=state, event=event, limit=limit)
        raw = self._list("/_mock/deliveries", "deliveries", params, min_count, timeout)
        return [DeliveryRecord.from_json(d) for d in raw]

    def requests(
        self,
        *,
        method: Optional[str] = None,
        path: Optional[str] = None,
        status: Optional[int] = None,
        limit: Optional[int] = None,
        min_count: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> List[JournalEntry]:
        """The journal of API requests, newest first (`path`: exact, or `/regex/`)."""
        params = dict(method=method, path=path, status=status, limit=limit)
        raw = self._list("/_mock/requests", "requests", params, min_count, timeout)
        return [JournalEntry.from_json(e) for e in raw]

    # --- the receiver audit (docs/receiver-audit.md) -------------------------------------
    def start_audit(self, job_id: str, state_url: Optional[str] = None, state_pointer: Optional[str] = None) -> str:
        """Start an audit of the webhook receiver of job `job_id` (`POST /_mock/jobs/{id}/audit`); its id."""
        body = _params(state_url=state_url, state_pointer=state_pointer)
        return str(self._req("POST", f"/_mock/jobs/{job_id}/audit", json=body, ok=(202,)).json()["id"])

    def wait_audit(self, audit_id: str, timeout: float = 120) -> AuditReport:
        """The report of audit `audit_id` once it is done: the mock's long-poll (`wait_ms`) answers
        the moment it is. Raises `WaitTimeout` after `timeout` seconds."""
        for wait_ms in _waits(timeout):
            r = self._req(
                "GET", f"/_mock/audits/{audit_id}", params={"wait_ms": wait_ms}, wait_ms=wait_ms, ok=(200, 408)
            )
            if r.status_code == 200:
                return AuditReport.from_json(r.json())
        so_far = AuditReport.from_json(r.json()["audit"])
        raise WaitTimeout(
            f"audit {audit_id} not done within {timeout} s: {len(so_far.cases)} case(s) reported so far", r
        )

    def audit(
        self,
        job_id: str,
        state_url: Optional[str] = None,
        state_pointer: Optional[str] = None,
        timeout: float = 120,
    ) -> AuditReport:
        """Audit the webhook receiver of job `job_id` (which has a webhook URL and has ended, or is
        held) and wait for the report. `state_url` (a template: `{job_id}` = the caller's
        `metadata.job_id`) and `state_pointer` (e.g. `/status`) read your service's state of the job
        before and after the duplicates and the conflicting outcome, so that one applied fails."""
        return self.wait_audit(self.start_audit(job_id, state_url, state_pointer), timeout)

    def audits(self, *, job_id: Optional[str] = None, limit: Optional[int] = None) -> List[AuditReport]:
        """Audit reports (of one job), newest first: every page, or the first `limit`."""
        out: List[AuditReport] = []
        cursor: Optional[str] = None
        while True:
            params = _params(job_id=job_id, limit=limit, cursor=cursor)
            page = self._req("GET", "/_mock/audits", params=params).json()
            out += [AuditReport.from_json(a) for a in page["audits"]]
            cursor = page["next"]
            if cursor is None or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out

    def close(self) -> None:
        self._http.close()
