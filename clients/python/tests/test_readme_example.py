# The README's "Testing with mock-camber / Python" example, verbatim from here.
def test_a_failed_job_is_reported_by_a_signed_webhook(camber, webhook_receiver):
    job = camber.submit(
        input={"filename": "a.pdf"},
        webhook=webhook_receiver,  # its .url
        mock={"outcome": "failure", "error": {"code": "OCR_FAILURE"}},
    )
    assert camber.wait_for_job(job.id).status == "failed"  # a long-poll, no sleep

    [hook] = webhook_receiver.wait_for(1)
    assert hook.verified  # Standard Webhooks signature and X-Webhook-Secret
    assert hook.body["camber_job_id"] == job.id
    assert hook.body["result"]["error"]["code"] == "OCR_FAILURE"
