//! `PUT /jobs/{id}/upload` behind the signed, expiring `upload_url`.

use serde_json::Value;

use crate::helpers::*;

/// An app whose Camber is down (uploads do not need it) and one pending job.
async fn app_with_job() -> (TestApp, String, String) {
    let app = spawn_app_with(AppOptions {
        camber_uri: format!("http://127.0.0.1:{}", free_port()),
        extra: vec!["--submit-retry-schedule".into(), "1h".into()],
        ..AppOptions::default()
    })
    .await;
    let (code, created) = app.post_job(&job_body("scan.pdf")).await;
    assert_eq!(code, 201);
    let id = created["job_id"].as_str().unwrap().to_owned();
    let url = created["upload_url"].as_str().unwrap().to_owned();
    (app, id, url)
}

#[actix_web::test]
async fn an_upload_through_the_signed_url_stores_the_bytes() {
    let (app, id, url) = app_with_job().await;
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let (code, body) = app.put_url(&url, bytes.clone()).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["size"], 1000);

    let stored = std::fs::read(app.artifact_dir().join(&id).join("input")).unwrap();
    assert_eq!(stored, bytes);
    let (_, job) = app.get_job(&id).await;
    let input = job["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "input")
        .cloned()
        .expect("input listed");
    assert_eq!(input["size"], 1000);
    let (code, downloaded) = app.get_raw(&format!("/jobs/{id}/artifacts/input")).await;
    assert_eq!((code, downloaded), (200, bytes));
}

#[actix_web::test]
async fn an_expired_upload_url_is_403() {
    let (app, id, _) = app_with_job().await;
    let past = chrono::Utc::now().timestamp() - 1;
    let expired = api::uploads::UploadSigner::new(SECRET).url(&app.address, &id, past);
    let (code, body) = app.put_url(&expired, b"abc".to_vec()).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    assert!(!app.artifact_dir().join(&id).join("input").exists());
}

#[actix_web::test]
async fn a_tampered_upload_url_is_403() {
    let (app, id, url) = app_with_job().await;
    let (base, sig) = url.rsplit_once("signature=").unwrap();
    let flipped: String = sig
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'a' {
                    'b'
                } else {
                    'a'
                }
            } else {
                c
            }
        })
        .collect();
    let later = url.replace("expires=", "expires=9");
    let other_job = url.replace(&id, "00000000-0000-4000-8000-000000000000");
    for bad in [
        format!("{base}signature={flipped}"),
        later,
        other_job,
        format!("{}/jobs/{id}/upload", app.address),
    ] {
        let (code, body) = app.put_url(&bad, b"abc".to_vec()).await;
        assert_eq!(code, 403, "{bad}: {body}");
    }
    assert!(!app.artifact_dir().join(&id).join("input").exists());
}

#[actix_web::test]
async fn an_upload_larger_than_the_jobs_file_size_is_413() {
    let (app, id, url) = app_with_job().await;
    let (code, body) = app.put_url(&url, vec![7u8; 1001]).await;
    assert_eq!(code, 413, "{body}");
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(!app.artifact_dir().join(&id).join("input").exists());
    let (_, job) = app.get_job(&id).await;
    assert_eq!(job["artifacts"], Value::Array(vec![]));
}
