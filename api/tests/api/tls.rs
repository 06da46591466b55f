//! api → mock-camber over HTTPS: the mock serves a certificate of a private
//! CA made at test time, and api trusts it through `--camber-ca-cert`.

use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use crate::helpers::*;

/// `ca.pem`, and `cert.pem` + `key.pem` for localhost / 127.0.0.1.
fn test_pki(dir: &std::path::Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
}

#[actix_web::test]
async fn a_job_runs_end_to_end_with_the_mock_on_https() {
    let pki = tempfile::tempdir().unwrap();
    test_pki(pki.path());
    let path = |n: &str| pki.path().join(n).display().to_string();
    let mock = start_mock_with(|m| {
        m.settings(|s| {
            s.tls_cert = Some(path("cert.pem").into());
            s.tls_key = Some(path("key.pem").into());
        })
    })
    .await;
    assert!(mock.uri().starts_with("https://"), "{}", mock.uri());

    let app = spawn_app_with(AppOptions {
        camber_uri: mock.uri().to_owned(),
        extra: vec!["--camber-ca-cert".into(), path("ca.pem")],
        ..AppOptions::default()
    })
    .await;
    let id = app.create_job("tls-invoice.pdf").await;
    let job = app
        .wait_for_status(&id, "completed", Duration::from_secs(10))
        .await;
    assert!(
        job["camber_job_id"].as_str().unwrap().starts_with("cmb_"),
        "{job}"
    );
    assert_eq!(event_sources(&job).last().unwrap(), "webhook", "{job}");

    // Without the CA the same mock is not trusted: submits keep failing.
    // (A long retry schedule keeps the job pending after its first failed
    // attempt, however late this test looks.)
    let untrusting = spawn_app_with(AppOptions {
        camber_uri: mock.uri().to_owned(),
        extra: vec!["--submit-retry-schedule".into(), "1h".into()],
        ..AppOptions::default()
    })
    .await;
    let id = untrusting.create_job("tls-invoice.pdf").await;
    wait_until(
        Duration::from_secs(10),
        "a failed submit attempt",
        || async {
            let (_, metrics) = untrusting.get_raw("/metrics").await;
            String::from_utf8(metrics)
                .unwrap()
                .contains("api_camber_submits_total{outcome=\"retry\"} 1")
                .then_some(())
        },
    )
    .await;
    let (_, job) = untrusting.get_job(&id).await;
    assert_eq!(job["status"], "pending", "{job}");
    assert_eq!(job["camber_job_id"], serde_json::Value::Null, "{job}");
}
