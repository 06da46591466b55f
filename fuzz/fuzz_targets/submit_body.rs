//! The mock's submit body validation: any bytes, as the body and as the
//! X-Mock-Scenario header. It must answer Ok or a clear error, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = mock_camber::routes::body::Submit::parse(&v, None);
        let _ = mock_camber::routes::body::Submit::parse(&v, Some(&text));
    }
    let v = serde_json::json!({"app": "a", "input": {}});
    let _ = mock_camber::routes::body::Submit::parse(&v, Some(&text));
});
