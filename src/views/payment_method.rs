//! A card on file as the API shows it (masked: brand, last four digits, expiry), in responses
//! and in events.

use serde::Serialize;

use crate::store::payment_methods::MaskedCard;
use recurring_core::billing::time::format_rfc3339;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodView<'a> {
    customer_ref: &'a str,
    brand: Option<&'a str>,
    last4: Option<&'a str>,
    exp_month: Option<u8>,
    exp_year: Option<u16>,
    added_at: String,
}

pub fn payment_method<'a>(
    customer_ref: &'a str,
    card: &'a MaskedCard,
    added_at: i64,
) -> PaymentMethodView<'a> {
    PaymentMethodView {
        customer_ref,
        brand: card.brand.as_deref(),
        last4: card.last4.as_deref(),
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        added_at: format_rfc3339(added_at),
    }
}
