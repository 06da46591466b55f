//! api's webhook path before any state: the signature check over the raw
//! bytes (first line of the input is the signature) and the body's parsing
//! into the contract's `WebhookBody` and an `Outcome`. Never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sig, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let sig = String::from_utf8_lossy(sig);
    let _ = shared::signing::verify_hex_any(&["secret", "older"], body, &sig);
    let _ = shared::signing::verify_standard(
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg",
        1,
        body,
        &sig,
    );
    if let Ok(parsed) = api::routes::webhooks::parse_body(body) {
        let _ = api::domain::Outcome::try_from(&parsed);
    }
});
