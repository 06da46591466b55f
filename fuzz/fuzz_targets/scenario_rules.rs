//! Scenarios and scenario rules (`metadata.mock`, `PUT /_mock/config`): any
//! JSON must parse or be refused with an error, never panic; a rule that
//! compiles must be safe to match against any body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = mock_camber::scenario::Scenario::parse(&v);
    if let Ok(rules) = mock_camber::scenario::parse_rules(v.clone()) {
        for rule in &rules {
            let _ = rule.matches(&v, "tenant");
        }
    }
});
