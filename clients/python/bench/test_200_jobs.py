# 200 tests, each submitting one job and waiting for its signed webhook (bench/run.py times this file).
import pytest


@pytest.mark.parametrize("i", range(200))
def test_a_job_and_its_webhook(camber, webhook_receiver, i):
    job = camber.submit(webhook=webhook_receiver, metadata={"job_id": f"bench-{i}"})
    [hook] = webhook_receiver.wait_for(1)
    assert hook.verified and hook.body["camber_job_id"] == job.id
