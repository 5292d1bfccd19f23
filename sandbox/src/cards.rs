//! Test cards: the number a person types on the hosted page decides how the checkout ends and
//! how later charges of the card's token end. No real card data is ever kept: only the brand,
//! the last four digits, the expiry and the behaviour derived from the number.

use crate::model::Outcome;

/// The test cards of the contract's table, as (checkout outcome, later token charges).
/// Any other number that passes the Luhn check approves both.
pub fn outcomes(number: &str) -> (Outcome, Outcome) {
    let decline = |r: &str| Outcome::Decline { reason: r.into() };
    match number {
        "4000000000009995" => (Outcome::Approve, decline("DENIED_NO_FUNDS")),
        "4000000000000119" => (Outcome::Approve, decline("DENIED_DO_NOT_TRY_AGAIN")),
        // Never yields a token (the checkout fails), but keep a sane answer anyway.
        "4000000000000002" => (decline("DENIED"), decline("DENIED")),
        _ => (Outcome::Approve, Outcome::Approve),
    }
}

/// Digits only, so "4111 1111-1111 1111" is the same card as "4111111111111111".
pub fn normalize(number: &str) -> String {
    number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

pub fn luhn_valid(number: &str) -> bool {
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            match (i % 2 == 1, d * 2) {
                (false, _) => d,
                (true, d2) if d2 > 9 => d2 - 9,
                (true, d2) => d2,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub fn brand(number: &str) -> &'static str {
    let prefix = |n: usize| -> u32 { number.get(..n).and_then(|p| p.parse().ok()).unwrap_or(0) };
    if number.starts_with('4') {
        "VISA"
    } else if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) {
        "MASTERCARD"
    } else if prefix(2) == 34 || prefix(2) == 37 {
        "AMEX"
    } else {
        "CARD"
    }
}

/// `07/30`, `7/2030`, ` 12 / 31 `: (month, four-digit year).
pub fn parse_expiry(text: &str) -> Option<(u8, u16)> {
    let (m, y) = text.trim().split_once('/')?;
    let month: u8 = m.trim().parse().ok().filter(|m| (1..=12).contains(m))?;
    let year: u16 = y.trim().parse().ok()?;
    Some((month, if year < 100 { 2000 + year } else { year }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_brands() {
        for ok in [
            "4111111111111111",
            "4000000000009995",
            "4000000000000119",
            "4000000000000002",
            "5555555555554444",
            "378282246310005",
        ] {
            assert!(luhn_valid(ok), "{ok}");
        }
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("4111"));
        assert!(!luhn_valid("4111x11111111111"));
        assert_eq!(brand("4111111111111111"), "VISA");
        assert_eq!(brand("5555555555554444"), "MASTERCARD");
        assert_eq!(brand("2221000000000009"), "MASTERCARD");
        assert_eq!(brand("378282246310005"), "AMEX");
        assert_eq!(normalize(" 4111 1111-1111 1111 "), "4111111111111111");
    }

    #[test]
    fn test_cards_decide_outcomes() {
        let reason = |o: Outcome| match o {
            Outcome::Decline { reason } => reason,
            Outcome::Approve => "approve".into(),
        };
        let table = [
            ("4111111111111111", "approve", "approve"),
            ("4000000000009995", "approve", "DENIED_NO_FUNDS"),
            ("4000000000000119", "approve", "DENIED_DO_NOT_TRY_AGAIN"),
            ("4000000000000002", "DENIED", "DENIED"),
            ("5555555555554444", "approve", "approve"),
        ];
        for (card, now, later) in table {
            let (a, b) = outcomes(card);
            assert_eq!(
                (reason(a).as_str(), reason(b).as_str()),
                (now, later),
                "{card}"
            );
        }
    }

    #[test]
    fn expiry_accepts_two_and_four_digit_years() {
        assert_eq!(parse_expiry("07/30"), Some((7, 2030)));
        assert_eq!(parse_expiry(" 12 / 2031 "), Some((12, 2031)));
        assert_eq!(parse_expiry("13/30"), None);
        assert_eq!(parse_expiry("0730"), None);
    }
}
