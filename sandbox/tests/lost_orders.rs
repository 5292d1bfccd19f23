//! Orders the provider forgets: after `DELETE /_sandbox/orders/:id` or the `lost` fault, its API
//! answers 404 for the order everywhere, while whatever moved on it stays in the ledger.

mod common;

use common::*;
use serde_json::json;

fn assert_not_found(r: &Reply, what: &str) {
    assert_eq!(r.status, 404, "{what}: {}", r.text);
    assert_eq!(r.body["status"], "ERROR", "{what}: {}", r.text);
    assert!(r.body.get("data").is_none(), "{what}: {}", r.text);
}

/// Every provider call about `order` answers 404, in both path forms.
fn assert_forgotten(s: &Sandbox, order: &str, token: &str) {
    for prefix in [String::new(), format!("/merchants/{MERCHANT}")] {
        assert_not_found(
            &s.api("GET", &format!("{prefix}/orders/{order}/status"), None),
            "status",
        );
        assert_not_found(
            &s.api("GET", &format!("{prefix}/orders/{order}/tokens"), None),
            "tokens",
        );
        assert_not_found(
            &s.api("DELETE", &format!("{prefix}/orders/{order}"), None),
            "cancel",
        );
        assert_not_found(
            &s.api(
                "POST",
                &format!("{prefix}/payments"),
                Some(&json!({"orderId": order, "paymentMethod": "CTOKEN",
                             "paymentMethodParams": {"tokenId": token}})),
            ),
            "payment",
        );
    }
}

#[test]
fn a_lost_order_answers_404_everywhere_and_stays_in_the_ledger() {
    let s = start();
    let page = s.page_order(9900, json!({"referenceId": "lost-page"}));
    assert_eq!(
        s.pay(&page, APPROVE).body["paymentStatus"],
        "PAYMENT_COMPLETED"
    );
    let token = s.token_of(&page);
    let mit = s.mit_order_with(9900, "lost-mit");
    let unpaid_page = s.page_order(9900, json!({"referenceId": "lost-unpaid"}));

    for order in [&page, &mit, &unpaid_page] {
        let r = s.call("DELETE", &format!("/_sandbox/orders/{order}"), None, false);
        assert_eq!(r.status, 204, "{}", r.text);
        assert_forgotten(&s, order, &token);
    }
    // A lost purchase cannot be refunded; its page link is dead.
    let refund = s.create_order(&json!({"terminal$id": MIT,
        "orderLines": [{"id": "r", "name": "Refund", "quantity": -1, "purchaseOrderId": page,
                        "amount": {"total": 1000, "currency": "752"}}],
        "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CARD_NP"}}}));
    assert!(refund.is_business_error("OR_0035"), "{}", refund.text);
    assert_eq!(s.get(&format!("/pay/{unpaid_page}")).status, 410);
    assert_eq!(s.pay(&unpaid_page, APPROVE).status, 404);

    // The ledger still shows the orders, marked lost, and the money that moved.
    let ledger = s.get("/_sandbox/ledger?referenceId=lost-page").body;
    assert_eq!(ledger["orders"][0]["lost"], true);
    assert_eq!(ledger["orders"][0]["status"], "PAYMENT_COMPLETED");
    assert_eq!(ledger["payments"][0]["status"], "PAYMENT_COMPLETED");
    // The token is the card's, not the order's: it still charges on another order.
    let other = s.mit_order(9900);
    assert_eq!(s.charge(&other, &token).body["status"], "SUCCESS");
    assert_eq!(s.wait_final(&other)["orderStatus"], "PAYMENT_COMPLETED");

    let unknown = s.call("DELETE", "/_sandbox/orders/ffffffffffffffffff", None, false);
    assert_eq!(unknown.status, 404);
    // An order that never existed is still the provider's business error on POST /payments.
    assert!(
        s.charge("ffffffffffffffffff", &token)
            .is_business_error("PS_0021")
    );
}

#[test]
fn the_lost_fault_forgets_the_next_orders_after_answering_them() {
    let s = start();
    let token = s.token_for(APPROVE);
    s.set_faults(json!({"rules": [{"endpoint": "create_order", "fault": "lost", "times": 2}]}));

    // An order created and lost at once: its id was answered, then nothing knows it.
    let lost = s.mit_order_with(9900, "lost-1");
    assert_forgotten(&s, &lost, &token);

    // A MerchantInitiated order that charges its token at once: the payment runs and the money
    // moves, but the provider answers 404 for the order.
    let r = s.create_order(&json!({"terminal$id": MIT, "referenceId": "lost-2",
        "orderLines": [{"id": "a", "name": "A", "quantity": 1, "amount": {"total": 4900, "currency": "752"}}],
        "controlFunctions": {"initiatePaymentsOptions": {"paymentMethod": "CTOKEN",
                                                         "paymentMethodParams": {"tokenId": token}}}}));
    assert_eq!(r.body["status"], "SUCCESS", "{}", r.text);
    assert!(r.body["data"]["paymentId"].is_string());
    let charged = r.body["data"]["orderId"].as_str().unwrap().to_owned();
    assert_not_found(
        &s.api("GET", &format!("/orders/{charged}/status"), None),
        "status",
    );
    eventually("the payment on the lost order to complete", || {
        s.get("/_sandbox/ledger?referenceId=lost-2").body["payments"][0]["status"]
            == "PAYMENT_COMPLETED"
    });
    assert_eq!(
        s.ledger()["payments_per_token"][&token]["completed_amount"],
        4900
    );

    // `times: 2` is used up: the next order is known as usual.
    let kept = s.mit_order_with(9900, "kept");
    assert_eq!(s.status(&kept)["orderStatus"], "PENDING");
    assert_eq!(s.get("/_sandbox/faults").body["rules"][0]["times"], 0);
}
