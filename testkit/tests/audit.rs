//! `Admin::audit`: the receiver audit started and waited for (the mock's
//! long-poll), its report typed, against the kit's own receiver.

use std::time::Duration;

use mock_camber_testkit::{AuditOptions, Error, MockCamber, Verdict, WebhookReceiver};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn audit_waits_for_the_report_and_types_it() {
    let mock = MockCamber::start().await;
    // Answers 200 to everything it gets: the signature cases fail.
    let hooks = WebhookReceiver::start().await;
    let camber = mock.tenant();
    let job = camber
        .submit(
            &json!({"app": "ocr", "input": {}, "webhook": {"url": hooks.url()},
                        "metadata": {"job_id": "mine-1"}}),
        )
        .await
        .unwrap();
    hooks.wait_for(1, WAIT).await;
    let admin = mock.admin();
    let report = admin.audit(&job.id, AuditOptions::default()).await.unwrap();
    assert_eq!(report.state, "done");
    assert_eq!(report.job_id, job.id);
    assert!(report.finished_at.is_some());
    assert_eq!(report.cases.len(), 19);
    for name in ["wrong_secret", "missing_signature", "reserialised"] {
        assert!(report.failed.iter().any(|f| f == name), "{report:#?}");
        assert_eq!(report.case(name).unwrap().verdict, Verdict::Fail);
    }
    let genuine = report.case("genuine").unwrap();
    assert_eq!(genuine.verdict, Verdict::Pass);
    assert_eq!(genuine.observed[0].status, Some(200));
    let s = report.summary;
    assert_eq!(s.pass + s.fail + s.info, report.cases.len());
    assert_eq!(s.fail, report.failed.len());

    // Listed newest first, typed the same.
    let second = admin.audit(&job.id, AuditOptions::default()).await.unwrap();
    let listed = admin.audits(&job.id).await.unwrap();
    assert_eq!(listed, [second.clone(), report]);
    assert_eq!(admin.wait_audit(&second.id, WAIT).await.unwrap(), second);
}

#[tokio::test]
async fn an_audit_that_cannot_run_or_is_not_done_in_time_says_so() {
    let mock = MockCamber::start().await;
    let admin = mock.admin();
    let err = admin
        .audit("cmb_nope", AuditOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err}");
    // A receiver that never answers keeps the audit running past a short
    // wait: a timeout with the report as it was.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    let job = mock
        .tenant()
        .submit(&json!({"app": "ocr", "input": {}, "webhook": {"url": url},
                        "metadata": {"mock": {"hold": true}}}))
        .await
        .unwrap();
    let opts = AuditOptions {
        timeout: Duration::from_millis(300),
        ..AuditOptions::default()
    };
    let err = admin.audit(&job.id, opts).await.unwrap_err();
    match err {
        Error::Timeout { last, .. } => {
            let last = last.expect("the report so far");
            assert!(last.contains("state: \"running\""), "{last}");
        }
        other => panic!("{other}"),
    }
}
