//! Which declines are worth retrying.
//!
//! The provider reports a normalised `failureReason` but marks none as soft or hard; this
//! classification is ours. Getting it wrong in
//! one direction loses revenue (a card that would have paid tomorrow is never retried); in the
//! other it costs network fees and issuer goodwill (retrying a card the issuer has blocked).
//! When a code is ambiguous the classification therefore leans hard.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeclineClass {
    /// May succeed later (no funds today, issuer unreachable): retried on the dunning schedule.
    Soft,
    /// Will not succeed with this card: never retried; the customer must give a new card.
    Hard,
    /// A code we do not know, or none at all: treated as soft, but retried at most once.
    Unknown,
}

impl DeclineClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineClass::Soft => "soft",
            DeclineClass::Hard => "hard",
            DeclineClass::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for DeclineClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const SOFT_CODES: [&str; 7] = [
    "DENIED",
    "DENIED_NO_FUNDS",
    "DENIED_TRY_AGAIN_LATER",
    "DENIED_EXCEEDS_WITHDRAWAL_LIMIT",
    "ERROR_ISSUER_TIMEOUT",
    "ERROR_ISSUER_UNAVAILABLE",
    "ERROR_SYSTEM",
];

pub const HARD_CODES: [&str; 12] = [
    "DENIED_DO_NOT_TRY_AGAIN",
    "DENIED_SUSPECTED_FRAUD",
    "DENIED_EXPIRED_CARD",
    "DENIED_INVALID_PAN",
    "DENIED_RESTRICTED_CARD",
    "DENIED_RECURRING_PAYMENT_CANCELLATION",
    "DENIED_SCA_REQUIRED",
    "DENIED_LOST_CARD",
    "DENIED_STOLEN_CARD",
    "DENIED_PICK_UP_CARD",
    "DENIED_CLOSED_ACCOUNT",
    "DENIED_INVALID_ACCOUNT",
];

/// Lost/stolen/pick-up/closed-or-invalid-account codes the provider may spell in other ways
/// (`DENIED_CARD_STOLEN`, `LOST_CARD_PICK_UP`). Matching by substring can only err towards
/// hard, which is the cheap direction for these: see the module comment.
const CATEGORY_1_FRAGMENTS: [&str; 5] = [
    "LOST",
    "STOLEN",
    "PICK_UP",
    "CLOSED_ACCOUNT",
    "INVALID_ACCOUNT",
];

/// Hard codes that map to Visa's "Category 1" (issuer will never approve) response codes, for
/// which Visa charges for every reattempt on the card: 14 invalid account number
/// (`DENIED_INVALID_PAN`) and R0/R1/R3 stop-payment / revocation orders
/// (`DENIED_RECURRING_PAYMENT_CANCELLATION`), on top of pick up (04, 07), lost (41), stolen
/// (43), closed account (46) and invalid account, matched by [`CATEGORY_1_FRAGMENTS`].
const CATEGORY_1_CODES: [&str; 2] = [
    "DENIED_INVALID_PAN",
    "DENIED_RECURRING_PAYMENT_CANCELLATION",
];

/// The code as the tables spell it; `None` for an absent or blank one.
fn normalise(reason: Option<&str>) -> Option<String> {
    reason
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(str::to_ascii_uppercase)
}

/// Classifies the provider's `failureReason`. Case and surrounding whitespace are ignored.
pub fn classify(reason: Option<&str>) -> DeclineClass {
    let Some(code) = normalise(reason) else {
        return DeclineClass::Unknown;
    };
    if HARD_CODES.contains(&code.as_str()) || is_category_1_code(&code) {
        DeclineClass::Hard
    } else if SOFT_CODES.contains(&code.as_str()) {
        DeclineClass::Soft
    } else {
        DeclineClass::Unknown
    }
}

fn is_category_1_code(code: &str) -> bool {
    CATEGORY_1_CODES.contains(&code) || CATEGORY_1_FRAGMENTS.iter().any(|f| code.contains(f))
}

/// Whether the decline is one of Visa's "Category 1" codes: the card is closed, blocked or
/// revoked for this merchant, and any further attempt on it (this charge or a later one) is
/// charged by Visa. Every such code is also [`DeclineClass::Hard`]; the flag tells the caller
/// that the card itself must not be charged again, not only that this charge must stop.
/// Mastercard and other networks' equivalents are treated the same way.
pub fn is_visa_category_1(reason: Option<&str>) -> bool {
    normalise(reason).is_some_and(|code| is_category_1_code(&code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classifies_the_contract_codes() {
        for code in SOFT_CODES {
            assert_eq!(classify(Some(code)), DeclineClass::Soft, "{code}");
            assert!(!is_visa_category_1(Some(code)), "{code}");
        }
        for code in HARD_CODES {
            assert_eq!(classify(Some(code)), DeclineClass::Hard, "{code}");
        }
    }

    #[test]
    fn marks_the_category_1_codes() {
        for code in [
            "DENIED_LOST_CARD",
            "DENIED_STOLEN_CARD",
            "DENIED_PICK_UP_CARD",
            "DENIED_CLOSED_ACCOUNT",
            "DENIED_INVALID_ACCOUNT",
            "DENIED_INVALID_PAN",
            "DENIED_RECURRING_PAYMENT_CANCELLATION",
            "DENIED_CARD_STOLEN",
            "lost_card_pick_up",
        ] {
            assert!(is_visa_category_1(Some(code)), "{code}");
            assert_eq!(classify(Some(code)), DeclineClass::Hard, "{code}");
        }
        // Hard, but a Category 2 or 3 code at Visa (or not a Visa code at all).
        for code in [
            "DENIED_DO_NOT_TRY_AGAIN",
            "DENIED_SUSPECTED_FRAUD",
            "DENIED_EXPIRED_CARD",
            "DENIED_RESTRICTED_CARD",
            "DENIED_SCA_REQUIRED",
        ] {
            assert!(!is_visa_category_1(Some(code)), "{code}");
        }
        assert!(!is_visa_category_1(None));
        assert!(!is_visa_category_1(Some("  ")));
    }

    #[test]
    fn tolerates_case_and_whitespace() {
        assert_eq!(classify(Some(" denied_no_funds ")), DeclineClass::Soft);
        assert_eq!(classify(Some("Denied_Stolen_Card\n")), DeclineClass::Hard);
        assert_eq!(classify(Some("\tDENIED")), DeclineClass::Soft);
    }

    #[test]
    fn anything_else_is_unknown() {
        for code in [
            None,
            Some(""),
            Some("   "),
            Some("SOMETHING_NEW"),
            Some("DENIED_NO_FUNDS_EXTRA"),
            Some("DENIED NO FUNDS"),
        ] {
            assert_eq!(classify(code), DeclineClass::Unknown, "{code:?}");
        }
    }

    #[test]
    fn prints_as_stored() {
        assert_eq!(DeclineClass::Soft.to_string(), "soft");
        assert_eq!(DeclineClass::Hard.as_str(), "hard");
        assert_eq!(DeclineClass::Unknown.as_str(), "unknown");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn category_1_is_always_hard(code in "\\PC{0,40}") {
            if is_visa_category_1(Some(&code)) {
                prop_assert_eq!(classify(Some(&code)), DeclineClass::Hard);
            }
        }

        #[test]
        fn any_fragment_anywhere_is_hard(
            prefix in "[A-Z_]{0,12}", suffix in "[A-Z_]{0,12}",
            fragment in proptest::sample::select(CATEGORY_1_FRAGMENTS.to_vec()),
        ) {
            let code = format!("{prefix}{fragment}{suffix}");
            prop_assert_eq!(classify(Some(&code)), DeclineClass::Hard);
            prop_assert!(is_visa_category_1(Some(&code.to_lowercase())));
        }
    }
}
