//! Which declines are worth retrying. The provider marks none as soft or hard; this
//! classification is ours (reference/psp-api.md). Hard declines are never retried: card networks
//! charge for retrying them (Visa's "Category 1": pick up, lost, stolen, closed or invalid account)
//! and they will not succeed without a new card.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineClass {
    /// May succeed later: retried on the dunning schedule.
    Soft,
    /// Will not succeed with this card: never retried.
    Hard,
    /// Not a code we know: treated as soft, but retried at most once.
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

const SOFT: [&str; 7] = [
    "DENIED",
    "DENIED_NO_FUNDS",
    "DENIED_TRY_AGAIN_LATER",
    "DENIED_EXCEEDS_WITHDRAWAL_LIMIT",
    "ERROR_ISSUER_TIMEOUT",
    "ERROR_ISSUER_UNAVAILABLE",
    "ERROR_SYSTEM",
];

const HARD: [&str; 12] = [
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

/// Fragments of lost/stolen/closed-account codes the provider may spell differently.
const HARD_FRAGMENTS: [&str; 5] = [
    "LOST",
    "STOLEN",
    "PICK_UP",
    "CLOSED_ACCOUNT",
    "INVALID_ACCOUNT",
];

pub fn classify(reason: Option<&str>) -> DeclineClass {
    let Some(code) = reason.map(|r| r.trim().to_ascii_uppercase()) else {
        return DeclineClass::Unknown;
    };
    if HARD.contains(&code.as_str()) || HARD_FRAGMENTS.iter().any(|f| code.contains(f)) {
        DeclineClass::Hard
    } else if SOFT.contains(&code.as_str()) {
        DeclineClass::Soft
    } else {
        DeclineClass::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_contract_codes() {
        for code in SOFT {
            assert_eq!(classify(Some(code)), DeclineClass::Soft, "{code}");
        }
        for code in HARD {
            assert_eq!(classify(Some(code)), DeclineClass::Hard, "{code}");
        }
    }

    #[test]
    fn tolerates_case_whitespace_and_variants_and_flags_the_unknown() {
        assert_eq!(classify(Some(" denied_no_funds ")), DeclineClass::Soft);
        assert_eq!(classify(Some("DENIED_CARD_STOLEN")), DeclineClass::Hard);
        assert_eq!(classify(Some("SOMETHING_NEW")), DeclineClass::Unknown);
        assert_eq!(classify(Some("")), DeclineClass::Unknown);
        assert_eq!(classify(None), DeclineClass::Unknown);
    }
}
