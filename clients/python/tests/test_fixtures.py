"""The fixtures against the real binary: each call does what the mock documents."""

import socket

import pytest

from mock_camber import Camber, JobEndedOtherwise, MockCamber, WaitTimeout


def test_submit_answers_the_job_and_wait_for_job_answers_it_completed(camber: Camber):
    job = camber.submit(input={"filename": "a.pdf"}, metadata={"job_id": "mine-1"})
    assert job.id.startswith("cmb_") and job.app == "pytest"
    assert job.metadata == {"job_id": "mine-1"}
    done = camber.wait_for_job(job.id, "completed")
    assert done.status == "completed" and done.finished_at is not None
    assert done.result is not None and done.error is None
    assert camber.job(job.id) == done


def test_wait_for_job_says_when_the_job_ended_otherwise(camber: Camber):
    job = camber.submit(mock={"outcome": "failure", "error": {"code": "FETCH_FAILED"}})
    with pytest.raises(JobEndedOtherwise, match="ended failed"):
        camber.wait_for_job(job.id, "completed")
    failed = camber.wait_for_job(job.id, "failed")
    assert failed.error is not None and failed.error.code == "FETCH_FAILED" and failed.error.stage == "FETCH"


def test_wait_for_job_times_out_on_a_held_job(camber: Camber):
    job = camber.submit(mock={"hold": True})
    assert camber.wait_for_job(job.id, "running").status == "running"
    with pytest.raises(WaitTimeout, match="not terminal within 0.2 s: it is running in FETCH"):
        camber.wait_for_job(job.id, timeout=0.2)


def test_a_fresh_tenant_sees_only_its_own_jobs(mock_camber: MockCamber, camber: Camber):
    other = mock_camber.tenant()
    assert other.key != camber.key
    mine = [camber.submit().id for _ in range(3)]
    theirs = other.submit().id
    assert [j.id for j in camber.list_jobs()] == mine[::-1]  # newest first
    assert [j.id for j in camber.list_jobs(limit=2)] == mine[:0:-1]
    assert [j.id for j in other.list_jobs()] == [theirs]
    assert {j.id for j in mock_camber.jobs(tenant=camber.key)} == set(mine)


def test_cancel_and_logs(camber: Camber):
    job = camber.submit(mock={"hold": True})
    assert camber.wait_for_job(job.id, "running").status == "running"
    assert camber.cancel(job.id).status == "cancelled"
    log = camber.logs(job.id)
    assert "FETCH started" in log
    assert camber.logs(job.id, tail=1).count("\n") <= 1


def test_hold_advance_complete_and_fail(mock_camber: MockCamber, camber: Camber):
    with camber.hold():
        a = camber.submit()
        b = camber.submit()
    after = camber.submit(input={"after": True})  # the block is over: not held
    assert camber.wait_for_job(after.id, timeout=5).status == "completed"
    assert mock_camber.advance(a.id).stage == "OCR"
    assert mock_camber.complete(a.id, result={"total": 42}).status == "completed"
    assert camber.job(a.id).result == {"total": 42}
    failed = mock_camber.fail(b.id, "OCR_TIMEOUT", reason="too slow")
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "OCR_TIMEOUT"
    story = mock_camber.job(b.id)
    assert [t.stage for t in story.timeline] == ["FETCH"] and story.timeline[0].outcome == "failed"
    assert story.chosen_by is not None and story.chosen_by["source"] == "rule"


def test_rules_apply_inside_the_block_and_the_config_comes_back(mock_camber: MockCamber, camber: Camber):
    before = mock_camber.config()
    fail_ocr = {"match": {"/input/filename": "/fail-ocr/"}, "scenario": {"outcome": "failure"}}
    with mock_camber.rules(fail_ocr, stage_ms=0) as cfg:
        assert cfg.stage_ms == 0 and cfg.rules[0] == fail_ocr
        bad = camber.submit(input={"filename": "fail-ocr.pdf"})
        good = camber.submit(input={"filename": "ok.pdf"})
    assert mock_camber.config() == before
    assert camber.wait_for_job(bad.id).status == "failed"
    assert camber.wait_for_job(good.id).status == "completed"


def test_webhook_receiver_verifies_both_signatures(camber: Camber, webhook_receiver):
    job = camber.submit(webhook=webhook_receiver, metadata={"job_id": "my-7"})
    [hook] = webhook_receiver.wait_for(1)
    assert hook.verified and hook.signature_ok and hook.secret_ok
    assert hook.attempt == 1 and hook.event == "job.completed"
    assert hook.body["job_id"] == "my-7" and hook.body["camber_job_id"] == job.id
    assert hook.headers["webhook-id"] == hook.delivery_id


def test_webhook_receiver_refuses_a_bad_signature(camber: Camber, webhook_receiver):
    camber.submit(webhook=webhook_receiver, mock={"webhook": {"bad_signature": True}})
    [hook] = webhook_receiver.wait_for(1)
    assert not hook.verified
    assert not hook.signature_ok and not hook.secret_ok


def test_respond_with_makes_the_mock_retry_then_deliver(mock_camber: MockCamber, camber: Camber, webhook_receiver):
    webhook_receiver.respond_with(500, 503, 200)
    job = camber.submit(webhook=webhook_receiver)
    hooks = webhook_receiver.wait_for(3)
    assert [(h.attempt, h.status) for h in hooks] == [(1, 500), (2, 503), (3, 200)]
    assert len({h.delivery_id for h in hooks}) == 1
    [d] = mock_camber.deliveries(job_id=job.id, state="delivered", timeout=10)
    assert [a.status for a in d.attempts] == [500, 503, 200]


def test_redeliver_sends_the_same_event_again(mock_camber: MockCamber, camber: Camber, webhook_receiver):
    job = camber.submit(webhook=webhook_receiver)
    [d] = mock_camber.deliveries(job_id=job.id, state="delivered", timeout=10)
    # A delivered webhook gets one manual attempt; none of its attempts failed.
    assert mock_camber.redeliver(d.id) == "pending"
    first, again = webhook_receiver.wait_for(2)
    assert again.delivery_id == first.delivery_id == d.id and again.attempt == 2 and again.verified


def test_deliveries_wait_times_out_with_408(mock_camber: MockCamber, camber: Camber):
    job = camber.submit(mock={"hold": True}, webhook="http://127.0.0.1:9/nowhere")
    with pytest.raises(WaitTimeout, match="0 of the 1"):
        mock_camber.deliveries(job_id=job.id, timeout=0.1)


def test_requests_journal_shows_what_the_client_sent(mock_camber: MockCamber, camber: Camber):
    job = camber.submit(input={"filename": "journal.pdf"}, idempotency_key="journal-1")
    [seen] = mock_camber.jobs(tenant=camber.key)
    assert seen.id == job.id and seen.tenant is not None and camber.key not in seen.tenant  # masked
    entries = mock_camber.requests(method="POST", path="/jobs", limit=500)
    [mine] = [e for e in entries if e.tenant == seen.tenant]
    assert mine.status == 201 and mine.body == {"app": "pytest", "input": {"filename": "journal.pdf"}}
    assert mine.headers["idempotency-key"] == "journal-1"
    assert camber.key not in mine.headers["authorization"]  # masked


def test_reset_forgets_jobs(mock_camber: MockCamber):
    # Its own mock: a reset of the session's would disturb other tests' tenants.
    with MockCamber.start(mock_camber.process.args[0] if mock_camber.process else None) as mock:  # type: ignore[union-attr]
        tenant = mock.tenant()
        tenant.submit()
        assert len(tenant.list_jobs()) == 1
        mock.reset()
        assert tenant.list_jobs() == []


def test_without_pytest_fixtures(mock_binary: str, monkeypatch: pytest.MonkeyPatch):
    # clients/python/README.md, "Without pytest" (the binary found as the plugin finds it).
    monkeypatch.setenv("MOCK_CAMBER_BIN", mock_binary)
    from mock_camber import MockCamber, WebhookReceiver

    with MockCamber.start() as mock, WebhookReceiver(mock.webhook_secret) as hooks:
        tenant = mock.tenant()
        job = tenant.submit(webhook=hooks)
        assert hooks.wait_for(1)[0].verified
    assert mock.process is not None and mock.process.returncode is not None  # stopped
    assert job.id.startswith("cmb_")


def test_audit_reports_what_a_receiver_that_accepts_everything_gets_wrong(
    mock_camber: MockCamber, camber: Camber, webhook_receiver
):
    job = camber.submit(webhook=webhook_receiver, metadata={"job_id": "audited-1"})
    assert camber.wait_for_job(job.id).status == "completed"
    webhook_receiver.wait_for(1)
    # The fixture's receiver records and answers 200 to everything: the signature cases fail.
    report = camber.audit(job.id)
    assert report.state == "done" and report.job_id == job.id and report.finished_at is not None
    assert {"wrong_secret", "missing_signature", "reserialised"} <= set(report.failed)
    assert report.case("wrong_secret").verdict == "fail"
    assert "signature" in report.case("wrong_secret").reason
    # Every request got its answer (this receiver closes each connection after answering, as
    # HTTP/1.0 does, without saying `Connection: close`); the slow sender is cut off at the limit.
    unanswered = [(c.name, o.error) for c in report.cases for o in c.observed if o.status is None]
    assert unanswered == [("slow_sender", "still reading after 2000 ms (the audit's limit)")]
    genuine = report.case("genuine")
    assert genuine.verdict == "pass" and genuine.observed[0].status == 200
    assert report.summary.fail == len(report.failed)
    assert report.summary.passed + report.summary.fail + report.summary.info == len(report.cases)
    assert [a.id for a in camber.audits(job.id)] == [report.id]
    assert mock_camber.job(job.id).audits == [report]  # the console's job story shows it
    # What the receiver got includes the badly signed copies it should have refused.
    assert any(not d.secret_ok for d in webhook_receiver.deliveries)


def test_audit_times_out_with_what_was_reported_so_far(camber: Camber):
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = "http://127.0.0.1:%d/hook" % silent.getsockname()[1]
        job = camber.submit(webhook=url, mock={"hold": True})
        with pytest.raises(WaitTimeout, match="not done within 0.3 s"):
            camber.audit(job.id, timeout=0.3)
