//! Which merchant key a request presents, and what it may do. A full key (the current one, or
//! the previous one while a rotation is under way) may do everything; the read key
//! (`MERCHANT_READ_KEY`) may read (`GET`, `HEAD`) and nothing else, so a reporting job or a
//! support tool never holds a key that can charge a card.

use crate::secure::constant_time_eq;

#[derive(Debug, Clone, Default)]
pub struct MerchantKeys {
    pub current: String,
    /// Accepted while a rotation is under way (`MERCHANT_API_KEY_PREVIOUS`).
    pub previous: Option<String>,
    /// Read-only (`MERCHANT_READ_KEY`).
    pub read: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Full,
    ReadOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A key that is none of the configured ones.
    Invalid,
    /// The read key, on a request that would change something.
    ReadOnly,
}

fn is(presented: &str, key: Option<&str>) -> bool {
    key.is_some_and(|k| !k.is_empty() && constant_time_eq(presented.as_bytes(), k.as_bytes()))
}

/// What the `Authorization` header `header` grants for a request of `method`. Every
/// configured key is compared, in constant time, whichever matches.
pub fn authorize(
    keys: &MerchantKeys,
    header: Option<&str>,
    method: &str,
) -> Result<Grant, Refusal> {
    let presented = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(Refusal::Missing)?;
    let full = is(presented, Some(&keys.current)) | is(presented, keys.previous.as_deref());
    let read = is(presented, keys.read.as_deref());
    match (full, read) {
        (true, _) => Ok(Grant::Full),
        (false, true) if matches!(method, "GET" | "HEAD") => Ok(Grant::ReadOnly),
        (false, true) => Err(Refusal::ReadOnly),
        (false, false) => Err(Refusal::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> MerchantKeys {
        MerchantKeys {
            current: "new-key".into(),
            previous: Some("old-key".into()),
            read: Some("read-key".into()),
        }
    }

    #[test]
    fn both_keys_of_a_rotation_open_everything() {
        for key in ["new-key", "old-key"] {
            let header = format!("Bearer {key}");
            assert_eq!(authorize(&keys(), Some(&header), "POST"), Ok(Grant::Full));
            assert_eq!(authorize(&keys(), Some(&header), "GET"), Ok(Grant::Full));
        }
    }

    #[test]
    fn the_read_key_reads_and_nothing_else() {
        let header = Some("Bearer read-key");
        assert_eq!(authorize(&keys(), header, "GET"), Ok(Grant::ReadOnly));
        assert_eq!(authorize(&keys(), header, "HEAD"), Ok(Grant::ReadOnly));
        for method in ["POST", "DELETE", "PUT", "PATCH", "OPTIONS"] {
            assert_eq!(authorize(&keys(), header, method), Err(Refusal::ReadOnly));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(authorize(&keys(), None, "GET"), Err(Refusal::Missing));
        assert_eq!(
            authorize(&keys(), Some("new-key"), "GET"),
            Err(Refusal::Missing)
        );
        assert_eq!(
            authorize(&keys(), Some("Bearer nope"), "GET"),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            authorize(&keys(), Some("Bearer "), "GET"),
            Err(Refusal::Invalid)
        );
        let only_current = MerchantKeys {
            current: "new-key".into(),
            ..MerchantKeys::default()
        };
        assert_eq!(
            authorize(&only_current, Some("Bearer old-key"), "GET"),
            Err(Refusal::Invalid),
            "a rotation's end refuses the old key"
        );
        assert_eq!(
            authorize(&only_current, Some("Bearer "), "GET"),
            Err(Refusal::Invalid),
            "an unset key is no key"
        );
    }
}
