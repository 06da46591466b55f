//! Where webhooks may go on a shared mock (`--webhook-allow`,
//! `--webhook-deny`): a literal address is refused at submit (422 naming
//! `webhook.url`), a host name that resolves to a denied address passes
//! submit and its attempts are refused at send time with the reason, an
//! allow entry names what passes, and `webhook.headers` may not set `Host`.

use mock_camber::engine::policy::{Allow, Net};
use serde_json::{json, Value};

use crate::helpers::*;

fn deny(s: &mut mock_camber::Settings, nets: &[&str]) {
    s.webhook_policy.deny = nets.iter().map(|n| Net::parse(n).unwrap()).collect();
}

fn allow(s: &mut mock_camber::Settings, entries: &[&str]) {
    s.webhook_policy.allow = entries.iter().map(|a| Allow::parse(a).unwrap()).collect();
}

fn port_of(url: &str) -> &str {
    url.rsplit(':').next().unwrap().split('/').next().unwrap()
}

fn assert_refused(r: &Response, needle: &str) {
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "INVALID_REQUEST", "{}", r.text);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("`webhook.url`"), "{msg}");
    assert!(msg.contains(needle), "{msg}");
}

#[actix_web::test]
async fn a_denied_address_is_refused_at_submit_naming_the_field() {
    let app = spawn_app_with(|s| deny(s, &["127.0.0.0/8", "::1"])).await;
    let mut rx = Receiver::start().await;
    let r = app.client.submit(job_to(&rx.url)).await;
    assert_refused(
        &r,
        "destination 127.0.0.1 denied by --webhook-deny 127.0.0.0/8",
    );
    let r = app.client.submit(job_to("http://[::1]:9/hook")).await;
    assert_refused(&r, "destination ::1 denied by --webhook-deny ::1/128");
    let r = app
        .client
        .submit(job_to("http://[::ffff:127.0.0.9]:9/"))
        .await;
    assert_refused(&r, "denied by --webhook-deny 127.0.0.0/8");
    // Nothing was created, nothing sent; other addresses pass.
    assert_eq!(app.client.get("/jobs").await.body["jobs"], json!([]));
    assert_eq!(
        app.client
            .submit(job_to("http://192.0.2.1:9/"))
            .await
            .status,
        201
    );
    assert!(rx.try_next().is_none());
}

#[actix_web::test]
async fn a_host_name_resolving_to_a_denied_address_passes_submit_and_is_refused_at_send() {
    let app = spawn_app_with(|s| deny(s, &["127.0.0.0/8", "::1"])).await;
    let mut rx = Receiver::start().await;
    let url = format!("http://localhost:{}/hook", port_of(&rx.url));
    let id = app.client.create(job_to(&url)).await;
    let d = app.client.wait_delivery(&id, "dead").await;
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{d}");
    for a in attempts {
        assert_eq!(a["status"], Value::Null, "{d}");
        let error = a["error"].as_str().unwrap();
        assert!(
            error.starts_with("destination ") && error.contains(" denied by --webhook-deny "),
            "{error}"
        );
    }
    assert!(rx.try_next().is_none(), "the receiver was reached");
}

#[actix_web::test]
async fn an_allow_entry_names_what_passes_and_every_other_destination_is_refused() {
    let app = spawn_app_with(|s| {
        allow(s, &["localhost"]);
        deny(s, &["127.0.0.0/8", "::1"]);
    })
    .await;
    let mut rx = Receiver::start().await;
    // Named by an allow entry: it passes though its addresses are denied.
    let url = format!("http://localhost:{}/hook", port_of(&rx.url));
    let id = app.client.create(job_to(&url)).await;
    assert_eq!(rx.next().await.json()["camber_job_id"], id.as_str());
    // Not named: refused, deny list or not.
    let r = app.client.submit(job_to(&rx.url)).await;
    assert_refused(&r, "destination 127.0.0.1 is not in --webhook-allow");
    let r = app.client.submit(job_to("http://hooks.example/")).await;
    assert_refused(&r, "destination hooks.example is not in --webhook-allow");

    // An allowed range: its addresses pass, others do not.
    let app = spawn_app_with(|s| allow(s, &["127.0.0.1/32"])).await;
    let id = app.client.create(job_to(&rx.url)).await;
    assert_eq!(rx.next().await.json()["camber_job_id"], id.as_str());
    let r = app.client.submit(job_to("http://10.1.2.3/")).await;
    assert_refused(&r, "destination 10.1.2.3 is not in --webhook-allow");
}

#[actix_web::test]
async fn webhook_headers_may_not_override_host() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    for name in ["Host", "host", "hOsT"] {
        let mut body = job_to(&rx.url);
        body["webhook"]["headers"] = json!({ name: "internal.example", "X-Ok": "1" });
        let r = app.client.submit(body).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("`webhook.headers.{name}`")), "{msg}");
    }
    let mut body = job_to(&rx.url);
    body["webhook"]["headers"] = json!({"X-Hosted": "fine"});
    assert_eq!(app.client.submit(body).await.status, 201);
}
