//! List cursors, alike on both services: a cursor is the `next` value of
//! the previous page, the decimal `seq` of the last row it held. An empty
//! `cursor=` is the first page; anything else that is not such a number is
//! refused (the OpenAPI documents declare the same `^[0-9]{0,18}$`).

/// Why a cursor was refused, for the services' `INVALID_REQUEST` message.
pub const BAD_CURSOR: &str = "`cursor` must be the `next` value of a previous page (digits)";

/// `Ok(None)`: no cursor (absent or empty), the first page.
pub fn parse_cursor(raw: Option<&str>) -> Result<Option<i64>, &'static str> {
    match raw {
        None | Some("") => Ok(None),
        Some(c) if c.len() <= 18 && c.bytes().all(|b| b.is_ascii_digit()) => {
            c.parse().map(Some).map_err(|_| BAD_CURSOR)
        }
        Some(_) => Err(BAD_CURSOR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_digits_or_nothing() {
        assert_eq!(parse_cursor(None), Ok(None));
        assert_eq!(parse_cursor(Some("")), Ok(None));
        assert_eq!(parse_cursor(Some("0")), Ok(Some(0)));
        assert_eq!(parse_cursor(Some("123")), Ok(Some(123)));
        assert_eq!(
            parse_cursor(Some("999999999999999999")),
            Ok(Some(999_999_999_999_999_999))
        );
        for bad in ["-5", "+5", "abc", " 1", "1.0", "١٢", "9999999999999999999"] {
            assert_eq!(parse_cursor(Some(bad)), Err(BAD_CURSOR), "{bad:?}");
        }
    }
}
