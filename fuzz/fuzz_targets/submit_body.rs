//! The mock's submit body validation: any bytes, as the body and as the
//! X-Mock-Scenario header, under an open webhook policy and under one with
//! allow and deny lists. It must answer Ok or a clear error, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mock_camber::engine::policy::{Allow, Net, Policy};
use std::sync::OnceLock;

fn policies() -> &'static [Policy; 2] {
    static P: OnceLock<[Policy; 2]> = OnceLock::new();
    P.get_or_init(|| {
        let restricted = Policy {
            allow: vec![
                Allow::parse("hooks.example.test").unwrap(),
                Allow::parse("10.1.0.0/16").unwrap(),
            ],
            deny: ["127.0.0.0/8", "10.0.0.0/8", "::1/128", "fe80::/10"]
                .iter()
                .map(|n| Net::parse(n).unwrap())
                .collect(),
        };
        [Policy::default(), restricted]
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for policy in policies() {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            let _ = mock_camber::routes::body::Submit::parse(&v, None, policy);
            let _ = mock_camber::routes::body::Submit::parse(&v, Some(&text), policy);
        }
        let v = serde_json::json!({"app": "a", "input": {}});
        let _ = mock_camber::routes::body::Submit::parse(&v, Some(&text), policy);
    }
});
