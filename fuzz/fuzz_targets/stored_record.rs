//! What a corrupted or hostile Redis value does to the store's record decoder: it is
//! refused (a store error, so 503) or read into a caller whose every method answers
//! without panicking, and which encodes and decodes back to itself.
#![no_main]

use std::time::Duration;

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use tower_bearer::fuzzing::{decode_record, encode_record};
use tower_bearer::token::TokenHash;

fuzz_target!(|data: &[u8]| {
    let hash = TokenHash::of("fuzz");
    let Some(caller) = decode_record(hash, data) else {
        return;
    };
    for now in [
        Utc::now(),
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
    ] {
        let _ = caller.is_expired_at(now);
        let _ = caller.use_is_due(now, Duration::from_secs(60));
        let _ = caller.use_is_due(now, Duration::MAX);
    }
    let _ = caller.idle_expires_at();
    let _ = caller.use_recording_step(Duration::from_secs(60));
    let _ = caller.token_id();
    let _ = serde_json::to_string(&caller);
    let bytes = encode_record(&caller).expect("a decoded caller encodes");
    assert_eq!(decode_record(hash, &bytes), Some(caller));
});
