//! `POST /jobs` validation: each bad field gets its own clear 4xx.

use serde_json::{json, Value};

use crate::helpers::*;

#[actix_web::test]
async fn each_bad_field_of_a_job_request_gets_its_own_clear_4xx() {
    // Validation happens before Camber is called: no mock needed.
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("portal_schema_name", Value::Null, "required"),
        ("portal_schema_name", json!(""), "empty"),
        ("portal_schema_name", json!(7), "string"),
        ("filename", Value::Null, "required"),
        ("filename", json!("../secret.pdf"), "path"),
        ("filename", json!("dir/a.pdf"), "path"),
        ("filename", json!("dir\\a.pdf"), "path"),
        ("filename", json!("x".repeat(256)), "255"),
        ("mime_type", Value::Null, "required"),
        ("mime_type", json!("text/html"), "one of"),
        ("file_size_bytes", Value::Null, "required"),
        ("file_size_bytes", json!(0), "between"),
        ("file_size_bytes", json!(26_214_401), "between"),
        ("file_size_bytes", json!(-5), "positive"),
        ("file_size_bytes", json!("100"), "integer"),
    ];
    for (field, value, needle) in cases {
        let mut body = job_body("a.pdf");
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value.clone();
        }
        let (code, err) = app.post_job(&body).await;
        assert_eq!(code, 422, "{field}={value}: {err}");
        assert_eq!(err["error"]["code"], "INVALID_REQUEST");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(field) && message.contains(needle),
            "{field}={value}: {message}"
        );
    }
    let (_, listed) = app.get("/jobs").await;
    assert_eq!(
        listed["jobs"],
        json!([]),
        "no invalid request created a job"
    );
}

#[actix_web::test]
async fn a_malformed_or_oversized_body_gets_the_contract_error() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    let (code, err) = app.post_job_raw(b"{\"filename\": ").await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    let (code, err) = app.post_job_raw(b"[1, 2]").await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (422, Some("INVALID_REQUEST"))
    );

    let mut big = job_body("a.pdf");
    big["padding"] = json!("x".repeat(100 * 1024));
    let (code, err) = app.post_job(&big).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE"))
    );
}
