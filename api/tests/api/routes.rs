//! The route table against openapi.yaml; 404/405; health, readiness,
//! metrics; the healthcheck subcommand; startup refusals.

use std::collections::BTreeSet;

use crate::helpers::*;

/// (path with `{}` for each parameter, lowercase method) of the document.
fn documented_operations(yaml: &str) -> BTreeSet<(String, String)> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];
    let mut ops = BTreeSet::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  ").filter(|l| l.starts_with('/')) {
            path = Some(normalise(
                p.trim_end().trim_end_matches(':').trim_matches('\''),
            ));
        } else if let Some(m) = line.strip_prefix("    ").filter(|l| !l.starts_with(' ')) {
            let key = m.trim_end().trim_end_matches(':');
            if METHODS.contains(&key) {
                ops.insert((path.clone().expect("method under a path"), key.to_owned()));
            }
        }
    }
    ops
}

fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn every_route_is_documented_in_openapi_and_every_documented_operation_is_a_route() {
    let registered: BTreeSet<(String, String)> = api::routes::routes()
        .into_iter()
        .map(|(path, method, _)| (normalise(path), method.as_str().to_ascii_lowercase()))
        .collect();
    let documented = documented_operations(api::routes::health::OPENAPI);
    assert!(!documented.is_empty());
    assert_eq!(
        registered, documented,
        "routes() and api/openapi.yaml disagree"
    );
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    let (code, body) = app.get("/nope").await;
    assert_eq!(code, 404);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    let (code, body) = app.get("/internal/webhooks/camber").await;
    assert_eq!(code, 405);
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    // RFC 9110: a 405 says what is allowed.
    let res = client()
        .get(format!("{}/internal/webhooks/camber", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("allow").unwrap(), "POST");
}

#[actix_web::test]
async fn health_readiness_metrics_and_the_openapi_document_are_served() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    let (code, metrics) = app.get_raw("/metrics").await;
    assert_eq!(code, 200);
    let text = String::from_utf8(metrics).unwrap();
    assert!(text.contains("api_jobs{status=\"pending\"} 0"), "{text}");
    assert!(text.contains("api_webhooks_total{outcome=\"unauthorized\"}"));
    let (code, doc) = app.get_raw("/openapi.yaml").await;
    assert_eq!(code, 200);
    assert!(String::from_utf8(doc)
        .unwrap()
        .contains("/internal/webhooks/camber"));
}

#[actix_web::test]
async fn the_healthcheck_command_passes_on_200_and_fails_otherwise() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    let ok = format!("{}/readyz", app.address);
    let missing = format!("{}/nope", app.address);
    let dead = format!("http://127.0.0.1:{}/readyz", free_port());
    let results = tokio::task::spawn_blocking(move || {
        (
            api::healthcheck::check(&ok),
            api::healthcheck::check(&missing),
            api::healthcheck::check(&dead),
        )
    })
    .await
    .unwrap();
    assert_eq!(results.0, Ok(true));
    assert_eq!(results.1, Ok(false));
    assert!(results.2.is_err());
}

#[actix_web::test]
async fn the_development_webhook_secret_is_refused_in_prod() {
    let dir = tempfile::tempdir().unwrap();
    let settings = api::Settings::from_args([
        "api",
        "--port",
        "0",
        "--service-env",
        "prod",
        "--webhook-secret",
        "dev-webhook-secret",
        "--db",
        &dir.path().join("api.db").display().to_string(),
        "--artifact-dir",
        &dir.path().join("a").display().to_string(),
    ])
    .unwrap();
    let err = api::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("WEBHOOK_SECRET"), "{err}");
}

/// `/readyz` proves writes: when the artifact directory cannot take a file
/// (here: it was replaced by a plain file, as a lost mount or a full disk
/// would refuse it), api is not ready; when it can again, it is.
#[actix_web::test]
async fn readyz_is_503_while_the_artifact_directory_takes_no_files() {
    let app = spawn_app(&format!("http://127.0.0.1:{}", free_port())).await;
    let (code, _) = app.get("/readyz").await;
    assert_eq!(code, 200);

    let dir = app.artifact_dir();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let (code, body) = app.get("/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");

    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let (code, _) = app.get("/readyz").await;
    assert_eq!(code, 200);
}
