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


def test_the_readme_shows_this_example():
    from pathlib import Path

    here = Path(__file__).resolve()
    example = here.read_text().split("\n", 1)[1].split("\n\n\ndef test_the_readme")[0]
    readme = (here.parents[3] / "README.md").read_text()
    section = readme.split("## Testing with mock-camber", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert section == example + "\n"
    assert len(section.splitlines()) < 15
