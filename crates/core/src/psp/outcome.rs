//! What an order status means for a customer-present (hosted page) order.

use super::types::{OrderStatus, PaymentState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOutcome {
    Paid {
        payment_id: String,
        amount: Option<i64>,
    },
    Failed {
        reason: String,
    },
    Pending,
}

/// A hosted-page order is paid once any payment completed, failed once the order or all its
/// payments ended without one (the page link is one-shot, so a failed order stays failed).
pub fn page_outcome(status: &OrderStatus) -> PageOutcome {
    if let Some(p) = status
        .payments
        .iter()
        .find(|p| PaymentState::parse(&p.payment_status) == PaymentState::Completed)
    {
        return PageOutcome::Paid {
            payment_id: p.payment_id.clone(),
            amount: p.amount,
        };
    }
    let last_reason = status
        .payments
        .iter()
        .rev()
        .find_map(|p| p.failure_reason.clone());
    let order_over = matches!(
        status.order_status.as_str(),
        "PAYMENT_FAILED" | "PAYMENT_CANCELLED"
    );
    let all_over = !status.payments.is_empty()
        && status
            .payments
            .iter()
            .all(|p| PaymentState::parse(&p.payment_status).is_final());
    if order_over || all_over {
        let reason = last_reason.unwrap_or_else(|| status.order_status.clone());
        return PageOutcome::Failed { reason };
    }
    PageOutcome::Pending
}

/// A return order (refund) is done when the order completed; it carries no card payment of
/// ours to look for, so the order's own status decides.
pub fn return_outcome(status: &OrderStatus) -> PageOutcome {
    match status.order_status.as_str() {
        "PAYMENT_COMPLETED" => PageOutcome::Paid {
            payment_id: status
                .payments
                .first()
                .map(|p| p.payment_id.clone())
                .unwrap_or_default(),
            amount: status.payments.first().and_then(|p| p.amount),
        },
        _ => page_outcome(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psp::types::PaymentStatus;

    fn status(order: &str, payments: &[(&str, Option<&str>)]) -> OrderStatus {
        OrderStatus {
            transactions: Vec::new(),
            order_status: order.into(),
            payments: payments
                .iter()
                .enumerate()
                .map(|(i, (s, r))| PaymentStatus {
                    payment_id: format!("p{i}"),
                    payment_status: (*s).into(),
                    payment_method: Some("CARD".into()),
                    amount: Some(9900),
                    failure_reason: r.map(str::to_owned),
                })
                .collect(),
        }
    }

    #[test]
    fn completed_payment_means_paid() {
        assert_eq!(
            page_outcome(&status("PAYMENT_COMPLETED", &[("PAYMENT_COMPLETED", None)])),
            PageOutcome::Paid {
                payment_id: "p0".into(),
                amount: Some(9900)
            }
        );
    }

    #[test]
    fn declined_or_cancelled_orders_fail_with_the_reason() {
        assert_eq!(
            page_outcome(&status(
                "PAYMENT_FAILED",
                &[("PAYMENT_FAILED", Some("DENIED"))]
            )),
            PageOutcome::Failed {
                reason: "DENIED".into()
            }
        );
        assert_eq!(
            page_outcome(&status("PAYMENT_CANCELLED", &[])),
            PageOutcome::Failed {
                reason: "PAYMENT_CANCELLED".into()
            }
        );
    }

    #[test]
    fn return_orders_complete_on_the_order_status() {
        assert!(matches!(
            return_outcome(&status("PAYMENT_COMPLETED", &[])),
            PageOutcome::Paid { .. }
        ));
        assert_eq!(
            return_outcome(&status("PENDING", &[])),
            PageOutcome::Pending
        );
    }

    #[test]
    fn anything_unfinished_is_pending() {
        assert_eq!(page_outcome(&status("PENDING", &[])), PageOutcome::Pending);
        assert_eq!(
            page_outcome(&status(
                "PAYMENT_INITIATED",
                &[("PAYMENT_PROCESSING", None)]
            )),
            PageOutcome::Pending
        );
    }
}
