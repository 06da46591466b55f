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

/// The test process's resident memory (the api runs in it), from
/// /proc/self/status.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

/// The input is streamed from disk: a multi-MiB input downloads
/// byte-identical with its Content-Type and Content-Length, and downloads
/// whose clients do not read hold a chunk each, not the file (the api read
/// the whole file into memory per download: N × size).
#[actix_web::test]
async fn the_input_is_streamed_and_unread_downloads_do_not_hold_the_file() {
    use std::io::{Read, Write};
    const SIZE: usize = 8 << 20;
    const DOWNLOADS: usize = 16;
    let app = spawn_app_with(AppOptions {
        camber_uri: format!("http://127.0.0.1:{}", free_port()),
        extra: vec!["--submit-retry-schedule".into(), "1h".into()],
        ..AppOptions::default()
    })
    .await;
    let mut body = job_body("big.pdf");
    body["file_size_bytes"] = SIZE.into();
    let (code, created) = app.post_job(&body).await;
    assert_eq!(code, 201, "{created}");
    let id = created["job_id"].as_str().unwrap().to_owned();
    let bytes: Vec<u8> = (0..SIZE as u32).map(|i| (i % 251) as u8).collect();
    let (code, reply) = app
        .put_url(created["upload_url"].as_str().unwrap(), bytes.clone())
        .await;
    assert_eq!(code, 200, "{reply}");

    let path = format!("/jobs/{id}/artifacts/input");
    let mut res = app
        .http
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let header = |name: &str| {
        res.headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/pdf");
    assert_eq!(header("content-length"), SIZE.to_string());
    let downloaded = res.body().limit(SIZE + 1).await.unwrap();
    assert!(downloaded == bytes, "the download differs from the upload");
    drop((downloaded, bytes));

    let before = rss_bytes();
    let addr = app.address.trim_start_matches("http://").to_owned();
    // Each client sends its request and reads only the response head: the
    // api has answered (and, before the fix, read the whole file).
    let clients: Vec<std::net::TcpStream> = (0..DOWNLOADS)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(s.read(&mut byte).unwrap(), 1, "the head ends early");
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
            s
        })
        .collect();
    let grown = rss_bytes().saturating_sub(before);
    drop(clients);
    // Holding the file per download would be DOWNLOADS × SIZE (128 MiB).
    assert!(
        grown < (DOWNLOADS * SIZE / 4) as u64,
        "{DOWNLOADS} unread downloads of {SIZE} bytes grew the process by {grown} bytes"
    );
}
