//! Secrets as the journal and the admin views show them: masked.

/// Headers whose values are secrets: kept masked.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "cookie",
    "x-webhook-secret",
    "x-api-key",
    "proxy-authorization",
];

pub fn mask_header(name: &str, value: &str) -> String {
    if !SECRET_HEADERS.contains(&name) {
        return value.to_owned();
    }
    mask_secret(value)
}

/// A secret as shown: `Scheme sk_l…1234`, or `sk_l…1234` without a scheme.
/// Every value of a caller's `webhook.headers` is shown so: its names are
/// free, so any of them may carry a receiver's credential.
pub fn mask_secret(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, secret)) => format!("{scheme} {}", crate::tenant::mask(secret)),
        None => crate::tenant::mask(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_are_masked() {
        assert_eq!(
            mask_header("authorization", "Bearer sk_live_abcdefgh1234"),
            "Bearer sk_l…1234"
        );
        assert_eq!(
            mask_header("content-type", "application/json"),
            "application/json"
        );
    }
}
