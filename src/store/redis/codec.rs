//! The stored form of a token's [`Caller`]: compact JSON, the hash being the key.
//!
//! Field order matters: `l`, `d`, `e` and `i` come first, in that order, because
//! `scripts/resolve.lua` reads them with patterns anchored at the start of the record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::net::IpAddr;
use std::time::Duration;

use crate::store::StoreError;

use crate::token::{Caller, ClientDetails, Scopes, SecondFactor, TokenHash, TokenKind};

/// The stored form of a [`Caller`] (its hash is the key, so it is not repeated).
#[derive(Serialize, Deserialize)]
pub(crate) struct Record {
    /// When a use was last recorded (Unix ms); absent before the first.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
    /// The idle timeout (ms); absent without one.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    idle_timeout: Option<u64>,
    /// Absent for a token that lives until revoked.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    /// Unix milliseconds.
    #[serde(rename = "i")]
    issued_at: i64,
    #[serde(rename = "k")]
    kind: TokenKind,
    #[serde(rename = "s")]
    subject: String,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    acting_admin: Option<String>,
    /// Absent in records of password-only tokens (and in records written before it existed).
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    second_factor: Option<SecondFactor>,
    /// Absent when empty (and in records written before scopes existed); checked as
    /// [`Scopes::new`] checks them when read.
    #[serde(rename = "c", default, skip_serializing_if = "Scopes::is_empty")]
    scopes: Scopes,
    /// Where the token was issued from; absent when unknown (and in earlier records).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
}

impl Record {
    pub(crate) fn encode(caller: &Caller) -> Result<Vec<u8>, StoreError> {
        let record = Record {
            last_used_at: caller.last_used_at.map(|at| at.timestamp_millis()),
            // Exact, unlike an expiry's `millis` (0 made 1): what was read is written back.
            idle_timeout: caller.idle_timeout.map(super::exact_millis),
            kind: caller.kind,
            subject: caller.subject.clone(),
            issued_at: caller.issued_at.timestamp_millis(),
            expires_at: caller.expires_at.map(|at| at.timestamp_millis()),
            name: caller.name.clone(),
            acting_admin: caller.acting_admin.clone(),
            second_factor: caller.second_factor,
            scopes: caller.scopes.clone(),
            user_agent: caller.client.user_agent().map(str::to_owned),
            ip: caller.client.ip,
        };
        serde_json::to_vec(&record).map_err(|error| StoreError::Backend(Box::new(error)))
    }

    /// An unreadable record is reported as a store error: fail closed, and loudly.
    pub(crate) fn decode(hash: TokenHash, bytes: &[u8]) -> Result<Caller, StoreError> {
        let record: Record =
            serde_json::from_slice(bytes).map_err(|error| StoreError::Backend(Box::new(error)))?;
        let instant = |millis| {
            DateTime::<Utc>::from_timestamp_millis(millis).ok_or_else(|| {
                StoreError::Backend("token record has an out-of-range timestamp".into())
            })
        };
        Ok(Caller {
            kind: record.kind,
            subject: record.subject,
            issued_at: instant(record.issued_at)?,
            expires_at: record.expires_at.map(instant).transpose()?,
            last_used_at: record.last_used_at.map(instant).transpose()?,
            idle_timeout: record.idle_timeout.map(Duration::from_millis),
            name: record.name,
            acting_admin: record.acting_admin,
            second_factor: record.second_factor,
            scopes: record.scopes,
            client: ClientDetails::new(record.user_agent.as_deref(), record.ip),
            token_hash: hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    /// `scripts/resolve.lua` finds these fields only at the very start of the record.
    #[test]
    fn the_fields_the_resolve_script_reads_come_first_in_order() {
        let now = DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000).unwrap_or_default();
        let caller = Caller::new(
            TokenKind::Customer,
            "\",\"l\":1,\"e\":2",
            TokenHash::of("t"),
            now,
            Some(now + TimeDelta::hours(1)),
        )
        .with_idle_timeout(Duration::from_secs(60))
        .with_last_used_at(now);
        let bytes = Record::encode(&caller).unwrap_or_default();
        let text = String::from_utf8(bytes.clone()).unwrap_or_default();
        assert!(
            text.starts_with(
                r#"{"l":1700000000000,"d":60000,"e":1700003600000,"i":1700000000000,"k":"customer""#
            ),
            "{text}"
        );
        assert_eq!(Record::decode(caller.token_hash, &bytes).ok(), Some(caller));
    }

    /// A record read from Redis is written back as it was, down to an idle timeout of 0
    /// (which no issue writes, but a stored value may hold: found by the `stored_record`
    /// fuzz target).
    #[test]
    fn a_decoded_record_encodes_back_to_itself_even_with_an_idle_timeout_of_0() {
        for idle in ["0", "1", "60000", "18446744073709551615"] {
            let stored = format!(r#"{{"d":{idle},"i":1700000000000,"k":"customer","s":"ada"}}"#);
            let hash = TokenHash::of("t");
            let decoded = Record::decode(hash, stored.as_bytes()).ok();
            let encoded = decoded
                .as_ref()
                .and_then(|caller| Record::encode(caller).ok());
            assert_eq!(encoded.as_deref(), Some(stored.as_bytes()), "idle {idle}");
            let again = encoded.and_then(|bytes| Record::decode(hash, &bytes).ok());
            assert_eq!(again, decoded);
        }
    }
}
