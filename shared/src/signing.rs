//! Webhook signatures, both schemes every webhook carries (docs/curl-tour.md):
//! - the seed's `X-Webhook-Secret`: lowercase hex HMAC-SHA256 of the raw body;
//! - Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
//!
//! Verification always works on the raw bytes and compares in constant time.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD as B64};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// `hex(HMAC-SHA256(secret, body))`, lowercase: the `X-Webhook-Secret` value.
pub fn sign_hex(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// Constant-time check of an `X-Webhook-Secret` header against the raw body.
/// Upper- or lowercase hex is accepted; anything else is a mismatch.
pub fn verify_hex(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(body);
    m.verify_slice(&given).is_ok()
}

/// How the part of a `whsec_` secret after the prefix is decoded: the
/// standard base64 alphabet, with or without its `=` padding (the Standard
/// Webhooks libraries accept both; none accepts the url-safe alphabet).
const WHSEC: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks a webhook secret at start: a `whsec_…` secret must be base64
/// (standard alphabet, padding optional) of a non-empty key, because that
/// is how every Standard Webhooks library reads it; a secret used as raw
/// bytes instead would make every receiver refuse every webhook. Other
/// secrets are keys as they are. The error never repeats the secret.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let Some(b64) = secret.strip_prefix("whsec_") else {
        return Ok(());
    };
    match WHSEC.decode(b64) {
        Ok(key) if !key.is_empty() => Ok(()),
        Ok(_) => Err("a `whsec_` secret needs a base64 key after the prefix".to_owned()),
        Err(e) => Err(format!(
            "a `whsec_` secret must be base64 after the prefix (standard alphabet `A-Za-z0-9+/`, \
             `=` padding optional), as Standard Webhooks libraries read it: {}",
            describe_b64_error(&e)
        )),
    }
}

/// A base64 error without the offending byte (it is part of a secret).
fn describe_b64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(at, _) => {
            format!("character {} is not in the alphabet", at + 1)
        }
        base64::DecodeError::InvalidLength(_) => "its length is not a base64 length".to_owned(),
        base64::DecodeError::InvalidLastSymbol(at, _) => {
            format!("character {} ends the value wrongly", at + 1)
        }
        base64::DecodeError::InvalidPadding => "its `=` padding is wrong".to_owned(),
    }
}

/// The key Standard Webhooks signs with: the base64-decoded part of a
/// `whsec_…` secret (padded or not), else the secret's own bytes. Both
/// binaries refuse at start a `whsec_` secret that does not decode (see
/// [`check_secret`]).
pub fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| WHSEC.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// The `webhook-signature` header value: `v1,<base64>`.
pub fn sign_standard(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        B64.encode(standard_raw(&standard_key(secret), msg_id, timestamp, body))
    )
}

fn standard_raw(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut m = mac(key);
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Checks a `webhook-signature` header (one or more space-separated
/// `v1,<base64>` entries) in constant time per entry. Timestamp tolerance is
/// the receiver's policy and is not checked here.
pub fn verify_standard(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let expected = standard_raw(&standard_key(secret), msg_id, timestamp, body);
    header.split_whitespace().any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|b64| B64.decode(b64).ok())
            .is_some_and(|given| bool::from(given.ct_eq(&expected)))
    })
}

/// `webhook-signature` during a secret rotation (Standard Webhooks): one
/// `v1,<base64>` entry per secret, the current one first, space-separated,
/// so a receiver still on an older secret verifies during the overlap.
pub fn sign_standard_all<S: AsRef<str>>(
    secrets: &[S],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| sign_standard(s.as_ref(), msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// [`verify_hex`] under any of `secrets` (a receiver during a rotation).
/// Every secret is tried, each comparison in constant time.
pub fn verify_hex_any<S: AsRef<[u8]>>(secrets: &[S], body: &[u8], signature: &str) -> bool {
    secrets
        .iter()
        .fold(false, |ok, s| verify_hex(s.as_ref(), body, signature) | ok)
}

/// Constant-time equality for secrets such as bearer tokens.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pinned from Python:
    // hmac.new(b"dev-webhook-secret", body, hashlib.sha256).hexdigest()
    const SEED_BODY: &[u8] =
        br#"{"camber_job_id":"cmb_test","job_id":"job-\u00e9","status":"success"}"#;
    const SEED_SIG: &str = "c32b28112ac0262d76d3941d96f16bc1a9d7a133a25c18fe396dca1b577d0bc0";

    #[test]
    fn hex_signature_matches_python_hmac_hexdigest() {
        assert_eq!(sign_hex(b"dev-webhook-secret", SEED_BODY), SEED_SIG);
        assert!(verify_hex(b"dev-webhook-secret", SEED_BODY, SEED_SIG));
        assert!(verify_hex(
            b"dev-webhook-secret",
            SEED_BODY,
            &SEED_SIG.to_uppercase()
        ));
    }

    #[test]
    fn hex_signature_rejects_wrong_secret_tampered_body_and_garbage() {
        assert!(!verify_hex(b"other-secret", SEED_BODY, SEED_SIG));
        assert!(!verify_hex(b"dev-webhook-secret", b"{}", SEED_SIG));
        assert!(!verify_hex(b"dev-webhook-secret", SEED_BODY, "not-hex"));
        assert!(!verify_hex(b"dev-webhook-secret", SEED_BODY, ""));
        assert!(!verify_hex(
            b"dev-webhook-secret",
            SEED_BODY,
            &SEED_SIG[..62]
        ));
    }

    // The Standard Webhooks specification's reference vector.
    const STD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const STD_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const STD_TS: i64 = 1649367553;
    const STD_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const STD_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn standard_signature_matches_the_reference_vector() {
        assert_eq!(sign_standard(STD_SECRET, STD_ID, STD_TS, STD_BODY), STD_SIG);
        assert!(verify_standard(
            STD_SECRET, STD_ID, STD_TS, STD_BODY, STD_SIG
        ));
        let several = format!("v1,AAAA {STD_SIG}");
        assert!(verify_standard(
            STD_SECRET, STD_ID, STD_TS, STD_BODY, &several
        ));
    }

    #[test]
    fn standard_signature_rejects_other_timestamp_id_or_body() {
        assert!(!verify_standard(
            STD_SECRET,
            STD_ID,
            STD_TS + 1,
            STD_BODY,
            STD_SIG
        ));
        assert!(!verify_standard(
            STD_SECRET, "msg_x", STD_TS, STD_BODY, STD_SIG
        ));
        assert!(!verify_standard(STD_SECRET, STD_ID, STD_TS, b"{}", STD_SIG));
        assert!(!verify_standard(
            STD_SECRET, STD_ID, STD_TS, STD_BODY, "v2,abc"
        ));
    }

    #[test]
    fn plain_secret_is_used_as_raw_key_bytes() {
        assert_eq!(standard_key("dev-webhook-secret"), b"dev-webhook-secret");
        assert_eq!(standard_key("whsec_AAEC"), vec![0u8, 1, 2]);
    }

    #[test]
    fn whsec_secrets_decode_padded_or_unpadded_and_refuse_the_rest() {
        // The reference secret has no padding to drop; `AAE=` does.
        assert_eq!(standard_key("whsec_AAE="), vec![0u8, 1]);
        assert_eq!(standard_key("whsec_AAE"), vec![0u8, 1], "unpadded");
        assert!(check_secret("whsec_AAE=").is_ok());
        assert!(check_secret("whsec_AAE").is_ok());
        assert!(check_secret(STD_SECRET).is_ok());
        assert!(check_secret("dev-webhook-secret").is_ok(), "not whsec_");
        // The url-safe alphabet, a stray character, a bad length, bad
        // padding, an empty key: refused, and the message never shows them.
        for bad in [
            "whsec_ab-_",
            "whsec_C2FVsBQIhrscChlQIMV-b5sSYspob7oD",
            "whsec_not base64!",
            "whsec_AAAAA",
            "whsec_AA=A",
            "whsec_",
        ] {
            let e = check_secret(bad).expect_err(bad);
            let tail = bad.strip_prefix("whsec_").unwrap();
            assert!(tail.is_empty() || !e.contains(tail), "{bad}: {e}");
        }
        // Signing with the unpadded form is signing with the padded one.
        assert_eq!(
            sign_standard("whsec_AAE", STD_ID, STD_TS, STD_BODY),
            sign_standard("whsec_AAE=", STD_ID, STD_TS, STD_BODY)
        );
    }

    #[test]
    fn a_rotation_signs_with_every_secret_and_verifies_under_any() {
        let header = sign_standard_all(&[STD_SECRET, "old-secret"], STD_ID, STD_TS, STD_BODY);
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0], STD_SIG,
            "the current secret's entry comes first"
        );
        assert!(verify_standard(
            "old-secret",
            STD_ID,
            STD_TS,
            STD_BODY,
            &header
        ));
        assert!(verify_standard(
            STD_SECRET, STD_ID, STD_TS, STD_BODY, &header
        ));
        assert!(!verify_standard("third", STD_ID, STD_TS, STD_BODY, &header));
        assert_eq!(
            sign_standard_all(&[STD_SECRET], STD_ID, STD_TS, STD_BODY),
            STD_SIG
        );

        let new_sig = sign_hex(b"new-secret", SEED_BODY);
        assert!(verify_hex_any(
            &["old-secret", "new-secret"],
            SEED_BODY,
            &new_sig
        ));
        assert!(verify_hex_any(&["dev-webhook-secret"], SEED_BODY, SEED_SIG));
        assert!(!verify_hex_any(&["a", "b"], SEED_BODY, SEED_SIG));
        assert!(!verify_hex_any::<&str>(&[], SEED_BODY, SEED_SIG));
    }
}
