"""Typed views of what mock-camber answers, one dataclass per OpenAPI schema.

Field names are the wire names; timestamps stay RFC 3339 strings as sent.
`tests/test_views_openapi.py` checks every dataclass here against the schema
it names in `SCHEMAS`, so a field the daemon adds or drops fails that test.
Fields the daemon sends that a dataclass does not know are ignored, so an
older client keeps working against a newer mock.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Type, TypeVar

T = TypeVar("T")

_DATACLASS_KW: Dict[str, Any] = {"frozen": True}
if sys.version_info >= (3, 10):
    _DATACLASS_KW["kw_only"] = True


def _build(cls: Type[T], data: Dict[str, Any], **convert: Any) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: v for k, v in data.items() if k in names}
    for name, fn in convert.items():
        if kwargs.get(name) is not None:
            kwargs[name] = fn(kwargs[name])
    return cls(**kwargs)


@dataclass(**_DATACLASS_KW)
class JobError:
    """Why a job failed (`WebhookError`): `code`, the `stage` it failed in, `details`."""

    code: str
    stage: str
    details: Optional[Dict[str, Any]] = None

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "JobError":
        return _build(cls, data)


@dataclass(**_DATACLASS_KW)
class JobWebhook:
    """A job's callback and where its delivery stands (`JobView.webhook`)."""

    url: str
    state: str
    attempts: int = 0

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "JobWebhook":
        return _build(cls, data)


@dataclass(**_DATACLASS_KW)
class Job:
    """A job as its tenant sees it (`JobView`)."""

    id: str
    job_id: str
    app: str
    status: str
    stage: Optional[str]
    metadata: Optional[Dict[str, Any]]
    created_at: str
    updated_at: str
    started_at: Optional[str]
    finished_at: Optional[str]
    webhook: Optional[JobWebhook]
    result: Optional[Dict[str, Any]] = None
    error: Optional[JobError] = None

    @property
    def terminal(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Job":
        return _build(cls, data, webhook=JobWebhook.from_json, error=JobError.from_json)


@dataclass(**_DATACLASS_KW)
class AdminJob(Job):
    """A job as the admin API lists it (`AdminJobView`): the tenant's key, masked."""

    tenant: Optional[str] = None

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "AdminJob":
        return _build(cls, data, webhook=JobWebhook.from_json, error=JobError.from_json)


@dataclass(**_DATACLASS_KW)
class Attempt:
    """One webhook attempt: `status` is None on a transport failure, then `error` says why."""

    n: int
    at: str
    status: Optional[int]
    latency_ms: Optional[int]
    error: Optional[str]
    response_excerpt: Optional[str]

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Attempt":
        return _build(cls, data)


@dataclass(**_DATACLASS_KW)
class DeliveryRecord:
    """The mock's record of one webhook event (`Delivery`) and every attempt at it."""

    id: str
    job_id: str
    event: str
    url: str
    state: str
    attempts: List[Attempt]
    created_at: Optional[str] = None

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "DeliveryRecord":
        return _build(cls, data, attempts=lambda a: [Attempt.from_json(x) for x in a])


@dataclass(**_DATACLASS_KW)
class TimelineEntry:
    """One stage of a job's run (`AdminJobDetail.timeline`)."""

    stage: str
    started_at: str
    ended_at: Optional[str] = None
    outcome: Optional[str] = None

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "TimelineEntry":
        return _build(cls, data)


@dataclass(**_DATACLASS_KW)
class JobStory(AdminJob):
    """One job's whole story (`AdminJobDetail`): plan, timeline, log, deliveries, receiver audits."""

    input: Optional[Dict[str, Any]] = None
    plan: Optional[Dict[str, Any]] = None
    chosen_by: Optional[Dict[str, Any]] = None
    timeline: List[TimelineEntry] = field(default_factory=list)
    log: List[str] = field(default_factory=list)
    deliveries: List[DeliveryRecord] = field(default_factory=list)
    audits: List["AuditReport"] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "JobStory":
        return _build(
            cls,
            data,
            webhook=JobWebhook.from_json,
            error=JobError.from_json,
            timeline=lambda t: [TimelineEntry.from_json(x) for x in t],
            deliveries=lambda d: [DeliveryRecord.from_json(x) for x in d],
            audits=lambda a: [AuditReport.from_json(x) for x in a],
        )


@dataclass(**_DATACLASS_KW)
class JournalEntry:
    """One API request the mock received (`GET /_mock/requests`), secrets masked."""

    at: str
    method: str
    path: str
    tenant: Optional[str]
    headers: Dict[str, str]
    body: Any
    status: int

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "JournalEntry":
        return _build(cls, data)


@dataclass(**_DATACLASS_KW)
class RuntimeConfig:
    """The runtime configuration (`GET|PUT /_mock/config`)."""

    stage_ms: int
    failure_rate: float
    submit_error_rate: float
    latency_ms: int
    rules: List[Dict[str, Any]]

    def as_patch(self) -> Dict[str, Any]:
        """This configuration as a `PUT /_mock/config` body that restores it whole."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "RuntimeConfig":
        return _build(cls, data)


@dataclass(**_DATACLASS_KW)
class AuditObserved:
    """One request of an audit case as the receiver answered it: `status` is None when it did not
    (then `error` says why); `excerpt` is at most 200 bytes of the answer."""

    status: Optional[int]
    latency_ms: int
    excerpt: Optional[str]
    error: Optional[str]

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "AuditObserved":
        return _build(cls, data)


@dataclass(**_DATACLASS_KW)
class AuditCase:
    """One case of the receiver audit, judged: `verdict` is pass, fail or info; `reason` says what to fix."""

    name: str
    expected: str
    observed: List[AuditObserved]
    verdict: str
    reason: str

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "AuditCase":
        return _build(cls, data, observed=lambda o: [AuditObserved.from_json(x) for x in o])


@dataclass(**_DATACLASS_KW)
class AuditSummary:
    """How many cases got each verdict."""

    passed: int
    fail: int
    info: int

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "AuditSummary":
        # `pass` is a Python keyword: the field is `passed`.
        return cls(passed=data["pass"], fail=data["fail"], info=data["info"])


@dataclass(**_DATACLASS_KW)
class AuditReport:
    """A receiver audit's report (`Audit`, docs/receiver-audit.md); in CI, `assert report.failed == []`."""

    id: str
    job_id: str
    state: str
    started_at: str
    finished_at: Optional[str]
    cases: List[AuditCase]
    summary: AuditSummary
    failed: List[str]

    def case(self, name: str) -> AuditCase:
        """The case named `name` (KeyError when the battery has none)."""
        for c in self.cases:
            if c.name == name:
                return c
        raise KeyError(name)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "AuditReport":
        return _build(
            cls,
            data,
            cases=lambda c: [AuditCase.from_json(x) for x in c],
            summary=AuditSummary.from_json,
        )


# Each dataclass and the OpenAPI schema (or schema path) it mirrors; the
# property names of the schema (allOf merged) must be its field names.
SCHEMAS: Dict[type, str] = {
    Job: "JobView",
    JobWebhook: "JobView.webhook",
    JobError: "WebhookError",
    AdminJob: "AdminJobView",
    JobStory: "AdminJobDetail",
    TimelineEntry: "AdminJobDetail.timeline[]",
    Attempt: "Attempt",
    DeliveryRecord: "Delivery",
    JournalEntry: "JournalEntry",
    RuntimeConfig: "RuntimeConfig",
    AuditReport: "Audit",
    AuditCase: "AuditCase",
    AuditObserved: "AuditCase.observed[]",
}
