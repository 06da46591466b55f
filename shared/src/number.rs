//! Whole numbers as JSON Schema sees them: `10` and `10.0` are both the
//! integer 10 (JSON does not tell them apart), so both services accept
//! either where their OpenAPI documents say `integer`.

use serde::{Deserialize, Deserializer};
use serde_json::Number;

/// `n` as a whole, non-negative number; floats past `u64::MAX` saturate
/// (so range checks, not type checks, refuse them). `None`: negative or
/// fractional.
pub fn whole_u64(n: &Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// serde `deserialize_with` for an optional whole number (`null` = absent).
pub fn opt_whole_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole_u64(&n).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a whole number of at least 0, got {n}"))
        }),
    }
}

/// As [`opt_whole_u64`], for `u32` fields (larger values are refused).
pub fn opt_whole_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    opt_whole_u64(d)?
        .map(|n| {
            u32::try_from(n).map_err(|_| {
                serde::de::Error::custom(format!("{n} is too large (at most {})", u32::MAX))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        let n = |v: serde_json::Value| whole_u64(v.as_number().unwrap());
        assert_eq!(n(json!(10)), Some(10));
        assert_eq!(n(json!(10.0)), Some(10));
        assert_eq!(n(json!(0.0)), Some(0));
        assert_eq!(n(json!(1e300)), Some(u64::MAX));
        assert_eq!(n(json!(10.5)), None);
        assert_eq!(n(json!(-1)), None);
        assert_eq!(n(json!(-1.0)), None);
    }

    #[test]
    fn the_serde_helpers_take_null_as_absent() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "opt_whole_u64")]
            a: Option<u64>,
            #[serde(default, deserialize_with = "opt_whole_u32")]
            b: Option<u32>,
        }
        let t: T = serde_json::from_value(json!({"a": 5.0, "b": null})).unwrap();
        assert_eq!((t.a, t.b), (Some(5), None));
        let t: T = serde_json::from_value(json!({})).unwrap();
        assert_eq!((t.a, t.b), (None, None));
        assert!(serde_json::from_value::<T>(json!({"a": 1.5})).is_err());
        assert!(serde_json::from_value::<T>(json!({"b": 5e9})).is_err());
        assert!(serde_json::from_value::<T>(json!({"a": "5"})).is_err());
    }
}
