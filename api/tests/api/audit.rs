//! Our own webhook receiver through the mock's receiver audit
//! (docs/receiver-audit.md): a job created through api, finished by its
//! webhook, then audited with api's own `GET /jobs/{job_id}` as the state
//! read. api must pass every case that applies to it.

use std::time::Duration;

use mock_camber_testkit::{AuditOptions, Verdict};

use crate::helpers::*;

#[actix_web::test]
async fn the_api_passes_every_case_of_the_receiver_audit() {
    let mock = start_mock().await;
    // A body deadline under the audit's own limit (the mock's
    // --delivery-timeout, 2 s here), so the slow sender is cut off in time.
    let app = spawn_app_with(AppOptions {
        camber_uri: mock.uri().to_owned(),
        extra: vec!["--body-timeout".into(), "1s".into()],
        ..AppOptions::default()
    })
    .await;
    let id = app.create_job("audit.pdf").await;
    let job = app
        .wait_for_status(&id, "completed", Duration::from_secs(10))
        .await;
    let camber_id = job["camber_job_id"].as_str().unwrap().to_owned();
    // The genuine delivery is delivered (the outbox has recorded api's 200).
    let admin = mock.admin();
    let filters = [("job_id", camber_id.as_str()), ("state", "delivered")];
    admin
        .wait_deliveries(&filters, 1, Duration::from_secs(10))
        .await
        .expect("the webhook is delivered");

    let opts = AuditOptions {
        state_url: Some(format!("{}/jobs/{{job_id}}", app.address)),
        state_pointer: Some("/status".into()),
        ..AuditOptions::default()
    };
    let report = admin.audit(&camber_id, opts).await.expect("the audit runs");
    assert_eq!(report.state, "done");
    assert_eq!(report.failed, Vec::<String>::new(), "{report:#?}");
    assert_eq!(report.summary.fail, 0);
    // What api verifies is X-Webhook-Secret (no timestamp): a replay is
    // reported, not failed. A body not declared JSON is refused (415).
    let infos: Vec<&str> = (report.cases.iter())
        .filter(|c| c.verdict == Verdict::Info)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        infos,
        ["stale_timestamp", "future_timestamp"],
        "{report:#?}"
    );
    let content_type = report.case("wrong_content_type").unwrap();
    assert_eq!(content_type.verdict, Verdict::Pass, "{content_type:#?}");
    let slow = report.case("slow_sender").unwrap();
    assert_eq!(slow.verdict, Verdict::Pass, "{slow:#?}");
    // The duplicates and the late conflicting outcome were read back from
    // api itself and left the job as it was.
    let conflict = report.case("conflicting_outcome").unwrap();
    assert_eq!(conflict.verdict, Verdict::Pass, "{conflict:#?}");
    assert!(
        conflict.reason.contains("the state stayed \"completed\""),
        "{conflict:#?}"
    );
    let (code, after) = app.get_job(&id).await;
    assert_eq!(code, 200);
    assert_eq!(after["status"], "completed", "{after}");
    assert_eq!(after["result"], job["result"], "{after}");
}
