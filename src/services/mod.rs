//! Flows that combine the provider, the vault and the ledger. Each is idempotent: webhooks,
//! polls, retries and cron ticks may run any of them again at any time.

pub mod activation;
pub mod charging;
pub mod dead_letters;
pub mod discounting;
pub mod events;
pub mod fanout;
pub mod hosted_checkout;
pub mod order_watching;
pub mod receipts;
pub mod refunding;
pub mod retention;
pub mod settling;
pub mod tick;
pub mod webhook_events;

#[cfg(test)]
mod tests {
    use super::{fanout, tick};

    #[test]
    fn reports_name_no_member_a_line_has_already() {
        let tick = serde_json::to_value(tick::TickReport::default()).unwrap();
        let consumer = serde_json::to_value(fanout::ConsumerReport::default()).unwrap();
        let tags = ["customerRef", "chargeId", "checkoutId", "subscriptionId"];
        for report in [tick, consumer] {
            for name in report.as_object().unwrap().keys() {
                assert!(
                    !crate::log::OWN.contains(&name.as_str()) && !tags.contains(&name.as_str()),
                    "{name}"
                );
            }
        }
    }
}
