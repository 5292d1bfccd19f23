//! New resource ids, from the platform's randomness (the core takes ids as values).

use recurring_core::secure::hex;

/// A new resource id: the prefix says what it is, 80 random bits make it unguessable.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    // The platform's CSPRNG does not fail; if it ever did, refusing to mint ids is right.
    getrandom::fill(&mut bytes).expect("crypto.getRandomValues is available");
    format!("{prefix}_{}", hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_random_hex() {
        let a = new_id("ch");
        assert!(a.starts_with("ch_") && a.len() == 23, "{a}");
        assert_ne!(a, new_id("ch"));
    }
}
