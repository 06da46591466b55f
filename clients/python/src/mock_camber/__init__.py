"""mock-camber for Python tests: a typed client, a webhook receiver, and a pytest plugin.

    def test_a_job_completes(camber, webhook_receiver):
        job = camber.submit(webhook=webhook_receiver)
        assert camber.wait_for_job(job.id).status == "completed"
        [hook] = webhook_receiver.wait_for(1)
        assert hook.verified and hook.body["status"] == "success"
"""

from .client import Admin, Camber, JobEndedOtherwise, MockCamberError, WaitTimeout, new_api_key
from .process import BinaryNotFound, MockCamber, find_binary
from .receiver import Delivery, WebhookReceiver, standard_webhook
from .views import (
    AdminJob,
    Attempt,
    AuditCase,
    AuditObserved,
    AuditReport,
    AuditSummary,
    DeliveryRecord,
    Job,
    JobError,
    JobStory,
    JobWebhook,
    JournalEntry,
    RuntimeConfig,
    TimelineEntry,
)

__all__ = [
    "Admin", "AdminJob", "Attempt", "AuditCase", "AuditObserved", "AuditReport", "AuditSummary", "BinaryNotFound", "Camber", "Delivery", "DeliveryRecord",
    "Job", "JobEndedOtherwise", "JobError", "JobStory", "JobWebhook", "JournalEntry", "MockCamber",
    "MockCamberError", "RuntimeConfig", "TimelineEntry", "WaitTimeout", "WebhookReceiver",
    "find_binary", "new_api_key", "standard_webhook",
]  # fmt: skip
