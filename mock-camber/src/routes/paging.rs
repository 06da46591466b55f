//! Paging and filters shared by the listings: `limit`, `cursor` and
//! `status` query values, and the page cut with its next cursor. A leaf:
//! the console reads with the same bounds.

use shared::JobStatus;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

pub fn parse_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::InvalidRequest(format!(
                "`limit` must be a whole number from 1 to {MAX_LIMIT}"
            ))),
        },
    }
}

pub fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    shared::paging::parse_cursor(cursor).map_err(|e| ApiError::InvalidRequest(e.into()))
}

pub fn parse_status(status: Option<&str>) -> Result<Option<JobStatus>, ApiError> {
    status
        .filter(|s| !s.is_empty())
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "`status` must be one of pending, running, completed, failed, cancelled (got `{s}`)"
                ))
            })
        })
        .transpose()
}

/// Cuts the extra row a listing fetched and gives the next cursor.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: usize,
    seq: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| seq(r).to_string());
        (rows, next)
    } else {
        (rows, None)
    }
}
