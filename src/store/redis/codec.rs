//! The stored form of a token's [`Caller`]: compact JSON, the hash being the key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;
use std::net::IpAddr;

use crate::token::{Caller, ClientDetails, Scopes, SecondFactor, TokenHash, TokenKind};

/// The stored form of a [`Caller`] (its hash is the key, so it is not repeated).
#[derive(Serialize, Deserialize)]
pub(super) struct Record {
    #[serde(rename = "k")]
    kind: TokenKind,
    #[serde(rename = "s")]
    subject: String,
    /// Unix milliseconds.
    #[serde(rename = "i")]
    issued_at: i64,
    /// Absent for a token that lives until revoked.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
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
    pub(super) fn encode(caller: &Caller) -> Result<Vec<u8>, StoreError> {
        let record = Record {
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
    pub(super) fn decode(hash: TokenHash, bytes: &[u8]) -> Result<Caller, StoreError> {
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
            name: record.name,
            acting_admin: record.acting_admin,
            second_factor: record.second_factor,
            scopes: record.scopes,
            client: ClientDetails::new(record.user_agent.as_deref(), record.ip),
            token_hash: hash,
        })
    }
}
