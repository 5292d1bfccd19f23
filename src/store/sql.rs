//! SQL text as it is sent: the pieces of a statement joined and its layout removed at compile
//! time. Statements are written over several indented lines to be readable; D1 needs none of
//! that whitespace, and the wasm need not carry it.

/// The statement `parts` make when joined, with every run of whitespace outside quotes
/// replaced by one space and none at either end, as a `&'static str` computed at compile
/// time: `sql!("SELECT ", COLUMNS, " FROM charges WHERE id = ?")`. A `--` comment outside
/// quotes does not compile (it would swallow the lines after it).
#[macro_export]
macro_rules! sql {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[&str] = &[$($part),+];
        const LEN: usize = $crate::store::sql::compact_len(PARTS);
        const BYTES: [u8; LEN] = $crate::store::sql::compact::<LEN>(PARTS);
        const TEXT: &str = match ::core::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("SQL text is UTF-8"),
        };
        TEXT
    }};
}

/// The length of the compacted statement.
pub const fn compact_len(parts: &[&str]) -> usize {
    walk(parts, &mut [])
}

/// The compacted statement's bytes; `N` is [`compact_len`].
pub const fn compact<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let written = walk(parts, &mut out);
    assert!(written == N, "compact::<N> needs N = compact_len");
    out
}

/// Walks the joined text, writing what fits into `out`, and returns the compacted length.
const fn walk(parts: &[&str], out: &mut [u8]) -> usize {
    let mut n = 0;
    let mut space = false;
    let mut quoted = false;
    let mut previous = 0u8;
    let mut p = 0;
    while p < parts.len() {
        let bytes = parts[p].as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !quoted && matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                space = n > 0;
            } else {
                if space {
                    if n < out.len() {
                        out[n] = b' ';
                    }
                    n += 1;
                    space = false;
                    previous = b' ';
                }
                assert!(
                    quoted || !(b == b'-' && previous == b'-'),
                    "no -- comments in SQL text"
                );
                if b == b'\'' {
                    quoted = !quoted;
                }
                if n < out.len() {
                    out[n] = b;
                }
                n += 1;
                previous = b;
            }
            i += 1;
        }
        p += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compacted(parts: &[&str]) -> String {
        let mut out = vec![0u8; compact_len(parts)];
        walk(parts, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn layout_goes_and_the_statement_stays() {
        const TEXT: &str = crate::sql!(
            "UPDATE charges SET status = ?,
                 updated_at = ?
             WHERE id = ?   "
        );
        assert_eq!(
            TEXT,
            "UPDATE charges SET status = ?, updated_at = ? WHERE id = ?"
        );
    }

    #[test]
    fn pieces_are_joined_as_written() {
        const COLUMNS: &str = "id, amount,\n    status";
        const TEXT: &str = crate::sql!("SELECT ", COLUMNS, " FROM charges\n  WHERE id = ?");
        assert_eq!(TEXT, "SELECT id, amount, status FROM charges WHERE id = ?");
        assert_eq!(compacted(&["  a", "", " b  "]), "a b");
        assert_eq!(compacted(&["\n\t"]), "");
    }

    #[test]
    fn quoted_text_is_kept_exactly() {
        assert_eq!(
            compacted(&["SELECT 'a  b\n c',   'it''s  x' ,\n 'x'"]),
            "SELECT 'a  b\n c', 'it''s  x' , 'x'"
        );
        // A minus sign is not a comment, and `--` inside quotes is text.
        assert_eq!(compacted(&["SELECT 1 - -1, '--'"]), "SELECT 1 - -1, '--'");
    }

    #[test]
    #[should_panic(expected = "no -- comments")]
    fn a_comment_is_refused() {
        compacted(&["SELECT 1 -- one\n, 2"]);
    }
}
