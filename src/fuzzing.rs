//! Entry points for the fuzz targets of `fuzz/` into code that is not public (feature
//! `fuzzing`). Not an API: hidden from the docs, and free to change in any release.

use crate::Caller;
use crate::token::TokenHash;

/// Decodes a stored Redis record as the Redis store does when it reads one, for the token
/// `hash`: `None` for a record it refuses.
pub fn decode_record(hash: TokenHash, bytes: &[u8]) -> Option<Caller> {
    crate::store::redis::codec::Record::decode(hash, bytes).ok()
}

/// Encodes `caller` as the Redis store writes it.
pub fn encode_record(caller: &Caller) -> Option<Vec<u8>> {
    crate::store::redis::codec::Record::encode(caller).ok()
}
