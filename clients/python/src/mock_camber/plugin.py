"""The pytest plugin (entry point `pytest11`): fixtures `mock_camber`, `camber`, `webhook_receiver`,
and, when a test that used them fails, a report section with what the mock saw for its tenant.

Environment:
  MOCK_CAMBER_BIN             the binary to run (else `mock-camber` on PATH, else target/{release,debug}/)
  MOCK_CAMBER_ARGS            more flags for it, after the plugin's (e.g. `--retry-schedule 10ms,10ms`)
  MOCK_CAMBER_URL             use this running mock instead of starting one
  MOCK_CAMBER_ADMIN_TOKEN     its --admin-token, if it has one
  MOCK_CAMBER_WEBHOOK_SECRET  its (current) webhook secret (default: the mock's own default)
  MOCK_CAMBER_CA_CERT         for an https URL: a PEM file of the CA that signed its certificate
  MOCK_CAMBER_API_KEY         a key it accepts, when it was started with --api-key: every test
                              then shares that tenant (no isolation; the failure report lists
                              only the jobs the failing test submitted)
"""

from __future__ import annotations

import os
import shlex
import ssl
from typing import Iterator, List

import pytest

from .client import Camber
from .process import BinaryNotFound, MockCamber
from .receiver import WebhookReceiver

DEFAULT_SECRET = "dev-webhook-secret"
_TENANTS = pytest.StashKey[List[Camber]]()
_RECEIVERS = pytest.StashKey[List[WebhookReceiver]]()
_MOCK = pytest.StashKey[MockCamber]()
# At most this many jobs of a tenant are told in a failure report.
REPORT_JOBS = 20


@pytest.fixture(scope="session")
def mock_camber(request: pytest.FixtureRequest) -> Iterator[MockCamber]:
    """A mock-camber for the session (per xdist worker): started from the binary, or MOCK_CAMBER_URL."""
    url = os.environ.get("MOCK_CAMBER_URL")
    if url:
        ca = os.environ.get("MOCK_CAMBER_CA_CERT")
        mock = MockCamber.connect(
            url,
            admin_token=os.environ.get("MOCK_CAMBER_ADMIN_TOKEN") or None,
            webhook_secret=os.environ.get("MOCK_CAMBER_WEBHOOK_SECRET") or DEFAULT_SECRET,
            verify=ssl.create_default_context(cafile=ca) if ca else None,
        )
    else:
        try:
            extra = shlex.split(os.environ.get("MOCK_CAMBER_ARGS", ""))
            mock = MockCamber.start(search_from=[request.config.rootpath], extra_args=extra)
        except BinaryNotFound as e:
            missing = str(e)
        else:
            missing = ""
        if missing:  # outside the except: one line, no chained traceback
            pytest.fail(missing, pytrace=False)
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def camber(mock_camber: MockCamber, request: pytest.FixtureRequest) -> Camber:
    """A client of a fresh tenant (a new API key) of the session's mock."""
    tenant = mock_camber.tenant(os.environ.get("MOCK_CAMBER_API_KEY") or None)
    request.node.stash.setdefault(_TENANTS, []).append(tenant)
    request.node.stash[_MOCK] = mock_camber
    return tenant


@pytest.fixture
def webhook_receiver(mock_camber: MockCamber, request: pytest.FixtureRequest) -> Iterator[WebhookReceiver]:
    """A webhook receiver on a free loopback port, verifying against the mock's secret."""
    with WebhookReceiver(mock_camber.webhook_secret) as receiver:
        request.node.stash.setdefault(_RECEIVERS, []).append(receiver)
        request.node.stash[_MOCK] = mock_camber
        yield receiver


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if not report.failed or report.when == "teardown" or _MOCK not in item.stash:
        return
    lines: List[str] = []
    mock = item.stash[_MOCK]
    for tenant in item.stash.get(_TENANTS, []):
        lines += _tell_tenant(mock, tenant)
    for receiver in item.stash.get(_RECEIVERS, []):
        lines += _tell_receiver(receiver)
    if lines:
        report.sections.append(("what mock-camber saw", "\n".join(lines)))


def _tell_tenant(mock: MockCamber, tenant: Camber) -> List[str]:
    shared = bool(os.environ.get("MOCK_CAMBER_API_KEY"))
    try:
        if shared:  # a tenant shared by every test: only the jobs this test submitted
            ids = tenant.submitted[-REPORT_JOBS:][::-1]
        else:
            ids = [j.id for j in mock.jobs(tenant=tenant.key, limit=REPORT_JOBS)]
        out = [f"tenant {tenant.key}: {len(ids)} job(s){' submitted by this test' if shared else ''}"]
        for id in ids:
            out += _tell_job(mock, id)
        return out
    except Exception as e:  # the mock may be what broke: say so, never hide the test's own failure
        return [f"tenant {tenant.key}: could not ask {mock.url}: {e}"]


def _tell_job(mock: MockCamber, id: str) -> List[str]:
    s = mock.job(id)
    out = [f"{s.id} app={s.app} status={s.status}" + (f" stage={s.stage}" if s.stage else "")]
    for t in s.timeline:
        out.append(f"  {t.stage:<9} {t.outcome or '':<8} {t.started_at} → {t.ended_at or '…'}")
    if s.error:
        out.append(f"  error {s.error.code} at {s.error.stage}: {s.error.details or {}}")
    if s.webhook is None:
        out.append("  webhook: none (no callback URL)")
    elif not s.deliveries:
        out.append(f"  webhook {s.webhook.url}: {s.webhook.state}")
    for d in s.deliveries:
        out.append(f"  delivery {d.id} {d.event} → {d.url}: {d.state}, {len(d.attempts)} attempt(s)")
        for a in d.attempts:
            status = a.status if a.status is not None else "no answer"
            err = f" error: {a.error}" if a.error else ""
            out.append(f"    #{a.n} {a.at} status {status}, {a.latency_ms} ms{err}")
    return out


def _tell_receiver(receiver: WebhookReceiver) -> List[str]:
    got = receiver.deliveries
    out = [f"webhook_receiver {receiver.url}: {len(got)} webhook(s) received"]
    for d in got:
        checks = "verified" if d.verified else f"NOT verified (signature {d.signature_ok}, X-Webhook-Secret {d.secret_ok})"
        out.append(f"  {d.event} {d.delivery_id} attempt {d.attempt} for {d.job_id}: answered {d.status}, {checks}")
    return out
