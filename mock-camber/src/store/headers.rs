//! A job's extra webhook headers and their SQL mapping.

use std::sync::Arc;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A job's extra webhook headers (`webhook.headers`), parsed once from the
/// submit body and shared, never re-encoded, on their way to the sender;
/// stored as a JSON object in one place (this type's SQL mapping).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Arc<[(String, String)]>);

impl Headers {
    /// The string-valued entries of a JSON object (others are refused at
    /// submit, so none are dropped here in practice).
    pub fn from_map(map: &serde_json::Map<String, serde_json::Value>) -> Self {
        Self(
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }
}

impl Headers {
    /// The JSON object stored for them.
    pub fn to_json(&self) -> String {
        if self.0.is_empty() {
            return "{}".to_owned();
        }
        let map: serde_json::Map<String, serde_json::Value> = self
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

impl ToSql for Headers {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_json()))
    }
}

impl FromSql for Headers {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(v.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))?;
        Ok(Self::from_map(&map))
    }
}
