//! [`TokenHashState`]: hashing for maps keyed by [`TokenHash`](super::TokenHash).

use std::hash::{BuildHasherDefault, Hasher};

/// The `BuildHasher` of maps keyed by [`TokenHash`](super::TokenHash): the key is already a
/// SHA-256 digest, uniformly random, so its bytes folded into a word (a rotate and an XOR per
/// eight bytes) are the map hash, and no second hash (SipHash, about a fifth of a memory
/// resolve) runs on every request.
///
/// Flooding is no concern: only tokens this crate issued, drawn from the OS CSPRNG, are ever
/// inserted, so a client cannot choose the digests that share a bucket; a made-up token is
/// only looked up, and a lookup's cost depends on what is stored, not on what is asked.
pub(crate) type TokenHashState = BuildHasherDefault<DigestPrefixHasher>;

/// Folds the bytes written into the hash (see [`TokenHashState`]).
#[derive(Default)]
pub(crate) struct DigestPrefixHasher(u64);

impl Hasher for DigestPrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // The derived `Hash` of `[u8; 32]` writes its length first, then the digest: fold
        // every write in, so the digest's bytes decide the hash whatever comes before.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_usize(&mut self, _length: usize) {
        // Only the length prefix of the digest comes here: the same for every key.
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;
    use crate::token::TokenHash;

    #[test]
    fn different_digests_hash_differently_and_equal_ones_alike() {
        let state = TokenHashState::default();
        let hashes: HashSet<u64> = (0..1000)
            .map(|n| state.hash_one(TokenHash::of(&format!("token {n}"))))
            .collect();
        assert_eq!(hashes.len(), 1000);
        let token = TokenHash::of("ada");
        assert_eq!(state.hash_one(token), state.hash_one(TokenHash::of("ada")));
    }
}
