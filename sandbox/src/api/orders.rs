//! Orders: create (purchases and return orders), status, tokens, cancel.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    authorize, business, malformed, not_found, parse_body, split_path, success, with_faults,
};
use crate::batches::run_due;
use crate::clock::wall_ms;
use crate::config::Config;
use crate::faults::Endpoint;
use crate::model::*;
use crate::processing::{NewPayment, cancel_in_flight, start_payment};
use crate::state::{Inner, Shared, new_id};
use crate::{status, webhooks};

/// The enabled currencies of the sandbox merchant: SEK, EUR, DKK.
const CURRENCIES: [&str; 3] = ["752", "978", "208"];
/// Per-transaction limits: 3 SEK to 499,999 SEK in minor units, the same numbers for all
/// currencies.
const MIN_AMOUNT: i64 = 300;
const MAX_AMOUNT: i64 = 49_999_900;
/// Refunds are allowed up to 90 days after the purchase.
const REFUND_PERIOD_MS: i64 = 90 * crate::settlement::DAY_MS;

/// A 1×1 transparent PNG, standing in for the provider's card image.
const CARD_ART: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// A create-order request that passed every check that needs no state.
struct OrderRequest {
    terminal: Terminal,
    kind: OrderKind,
    /// Minor units; negative for a return.
    amount: i64,
    currency: String,
    purchase_order_id: Option<String>,
    tokenize: bool,
    callback_url: Option<String>,
    redirect_url: Option<String>,
    failure_redirect_url: Option<String>,
    reference_id: Option<String>,
    lines: Value,
    customer: Option<Value>,
    /// `initiatePaymentsOptions` with a CTOKEN on a MerchantInitiated order: charge it at once.
    charge_token: Option<String>,
}

pub async fn create_order(
    State(sb): State<Shared>,
    merchant: Option<Path<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(denied) = authorize(&sb, &headers, merchant.as_deref().map(String::as_str)) {
        return denied;
    }
    let Some(req) = parse_body(&body) else {
        return malformed();
    };
    let endpoint = if is_return(&req) {
        Endpoint::Refund
    } else {
        Endpoint::CreateOrder
    };
    with_faults(&sb, endpoint, StatusCode::CREATED, |sb, decision| {
        let checked = match validate(&sb.config, &req) {
            Ok(checked) => checked,
            Err(message) => return business(StatusCode::CREATED, &message),
        };
        let mut guard = sb.lock();
        let (response, created) = create_checked(sb, &mut guard, checked);
        if decision.lose_order
            && let Some(order) = created.and_then(|id| guard.ledger.orders.get_mut(&id))
        {
            order.lost = true;
        }
        sb.persist(&guard);
        response
    })
    .await
}

fn is_return(req: &Value) -> bool {
    req["orderLines"]
        .as_array()
        .is_some_and(|lines| lines.iter().any(|l| l.get("purchaseOrderId").is_some()))
}

/// The provider's amount checks, in the order it reports them.
fn validate(c: &Config, req: &Value) -> Result<OrderRequest, String> {
    let terminal = match req["terminal$id"].as_str() {
        Some(t) if t == c.page_terminal_id => Terminal::PaymentPage,
        Some(t) if t == c.mit_terminal_id => Terminal::MerchantInitiated,
        _ => return Err("OR_0010: Unknown terminal".into()),
    };
    let Some(lines) = req["orderLines"].as_array().filter(|l| !l.is_empty()) else {
        return Err("OR_0011: An order needs at least one order line".into());
    };
    let returning = is_return(req);
    let purchase_order_id = lines[0]["purchaseOrderId"].as_str().map(str::to_owned);
    let mut currency: Option<&str> = None;
    let mut total: i64 = 0;
    for line in lines {
        let amount = &line["amount"];
        let (Some(unit), Some(quantity)) = (amount["total"].as_i64(), line["quantity"].as_i64())
        else {
            return Err("OR_0012: Every line needs an integer quantity and amount.total".into());
        };
        if quantity == 0 {
            return Err("OR_0012: A line quantity cannot be 0".into());
        }
        let line_currency = amount["currency"].as_str().unwrap_or("");
        if !CURRENCIES.contains(&line_currency) {
            return Err("OR_0004: Currency not enabled for the merchant".into());
        }
        if *currency.get_or_insert(line_currency) != line_currency {
            return Err("OR_0004: All lines must have the same currency".into());
        }
        if let Some(regular) = amount["regular"].as_i64() {
            let shipping = amount["shipping"].as_i64().unwrap_or(0);
            let campaign = amount["campaign"].as_i64().unwrap_or(0);
            if Some(unit)
                != regular
                    .checked_add(shipping)
                    .and_then(|s| s.checked_sub(campaign))
            {
                return Err(
                    "OR_0023: Line total does not equal regular + shipping - campaign".into(),
                );
            }
        }
        let line_total = unit
            .checked_mul(quantity)
            .ok_or("OR_0037: Invalid total order price")?;
        let line_total = if returning {
            if line["purchaseOrderId"].as_str() != purchase_order_id.as_deref() {
                return Err(
                    "OR_0013: Every line of a return order names the same purchaseOrderId".into(),
                );
            }
            if quantity > 0 && unit > 0 {
                return Err("OR_0014: A return order has negative quantities or totals".into());
            }
            // Sources differ on which of quantity and total carries the minus; a return is
            // money going back either way.
            -line_total.abs()
        } else {
            line_total
        };
        total = total
            .checked_add(line_total)
            .ok_or("OR_0037: Invalid total order price")?;
    }
    let currency = currency.unwrap_or_default().to_owned();
    let declared = &req["totalOrderAmount"];
    if let Some(declared_total) = declared["total"].as_i64() {
        let reconciles = if returning {
            declared_total.checked_abs() == Some(total.abs())
        } else {
            declared_total == total
        };
        if !reconciles {
            return Err("OR_0037: Invalid total order price".into());
        }
    }
    if declared["currency"].as_str().is_some_and(|c| c != currency) {
        return Err("OR_0004: Currency not enabled for the merchant".into());
    }

    let control = &req["controlFunctions"];
    let options = &control["initiatePaymentsOptions"];
    let online = &control["online"];
    if returning {
        if options["paymentMethod"].as_str() != Some("CARD_NP") {
            return Err(
                "OR_0016: A return order needs initiatePaymentsOptions.paymentMethod CARD_NP"
                    .into(),
            );
        }
    } else if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&total) {
        return Err("OR_0038: The amount is outside the per-transaction limits".into());
    }
    let url = |v: &Value| -> Result<Option<String>, String> {
        match v.as_str() {
            None => Ok(None),
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                Ok(Some(u.to_owned()))
            }
            Some(_) => Err("OR_0015: URLs must be http or https".into()),
        }
    };
    // A token to charge with the order itself (MerchantInitiated orders only).
    let charge_token = match (terminal, options["paymentMethod"].as_str()) {
        (Terminal::MerchantInitiated, Some("CTOKEN")) if !returning => Some(
            options["paymentMethodParams"]["tokenId"]
                .as_str()
                .or_else(|| options["tokenId"].as_str())
                .ok_or("PS_0031: Invalid token")?
                .to_owned(),
        ),
        _ => None,
    };
    Ok(OrderRequest {
        terminal,
        kind: if returning {
            OrderKind::Return
        } else {
            OrderKind::Purchase
        },
        amount: total,
        currency,
        purchase_order_id,
        // The formal reference's placement, and the guide's.
        tokenize: online["enforceTokenization"].as_bool() == Some(true)
            || control["enforceTokenization"].as_bool() == Some(true),
        callback_url: url(&control["callBackUrl"])?,
        redirect_url: url(&online["redirectUrl"])?,
        failure_redirect_url: url(&online["failureRedirectUrl"])?,
        reference_id: req["referenceId"].as_str().map(str::to_owned),
        lines: Value::Array(lines.clone()),
        customer: req.get("customer").cloned(),
        charge_token,
    })
}

/// The checks that need the ledger, then the order (and the payment it starts, if any): the
/// answer, and the id of the order when one was created.
fn create_checked(sb: &Shared, inner: &mut Inner, req: OrderRequest) -> (Response, Option<String>) {
    let created = StatusCode::CREATED;
    let refused = |message: &str| (business(created, message), None);
    // The card a return pays back to, or the token a MerchantInitiated order charges at once.
    let mut refund_card = None;
    let now = sb.now();
    if let Some(purchase_id) = &req.purchase_order_id {
        // Whether the purchase settled depends on batches that may have just become due.
        run_due(sb, inner, now);
        let ledger = &inner.ledger;
        let purchase = ledger
            .known_order(purchase_id)
            .filter(|o| o.kind == OrderKind::Purchase);
        let Some((purchase, paid)) = purchase.zip(ledger.completed_payment(purchase_id)) else {
            return refused("OR_0035: The purchase order is not completed");
        };
        // Until the money settled, the provider has nothing to give back: void it instead.
        if paid.settlement.status != SettlementStatus::Settled {
            return refused("OR_0035: The purchase order is not settled");
        }
        if paid
            .completed()
            .is_some_and(|at| now - at > REFUND_PERIOD_MS)
        {
            return refused("OR_0039: Refund period has expired");
        }
        if purchase.currency != req.currency {
            return refused("OR_0004: The currency differs from the purchase");
        }
        if ledger.returned_amount(purchase_id) + req.amount.abs() > paid.amount {
            return refused("OR_0036: Refunds would exceed the amount of the purchase");
        }
        refund_card = paid.card.clone();
    }
    if let Some(token_id) = &req.charge_token
        && !inner.ledger.tokens.contains_key(token_id)
    {
        return refused("PS_0031: Invalid token");
    }

    let id = new_id();
    inner.ledger.orders.insert(
        id.clone(),
        Order {
            id: id.clone(),
            reference_id: req.reference_id,
            terminal: req.terminal,
            kind: req.kind,
            amount: req.amount,
            currency: req.currency,
            lines: req.lines,
            customer: req.customer,
            tokenize: req.tokenize,
            callback_url: req.callback_url,
            redirect_url: req.redirect_url,
            failure_redirect_url: req.failure_redirect_url,
            purchase_order_id: req.purchase_order_id,
            cancelled: false,
            lost: false,
            link_used: false,
            payments: Vec::new(),
            created_at: now,
            history: Vec::new(),
        },
    );
    status::record(&mut inner.ledger, &id, wall_ms());

    let mut data = json!({"orderId": id});
    let started = match (req.kind, req.charge_token) {
        // A return moves the money back to the purchase's card by itself.
        (OrderKind::Return, _) => Some(start_payment(
            sb,
            inner,
            NewPayment {
                order_id: &id,
                method: "CARD_NP",
                token_id: None,
                card: refund_card,
                amount: req.amount.abs(),
                planned: Outcome::Approve,
                delay_ms: None,
            },
        )),
        (OrderKind::Purchase, Some(token_id)) => {
            Some(charge_token(sb, inner, &id, token_id, req.amount))
        }
        (OrderKind::Purchase, None) => None,
    };
    match req.terminal {
        // The customer pays on the page: no paymentId for the merchant, as the provider does.
        Terminal::PaymentPage if req.kind == OrderKind::Purchase => {
            data["paymentPageLink"] = json!(format!("{}/pay/{id}", sb.public_url));
        }
        Terminal::PaymentPage => {}
        Terminal::MerchantInitiated => {
            if let Some(payment_id) = started {
                data["paymentId"] = json!(payment_id);
            }
        }
    }
    (
        success(created, data, "Order created successfully."),
        Some(id),
    )
}

/// Starts a CTOKEN payment of `amount` on an order: the token's behaviour (or its card) decides
/// how it ends.
pub fn charge_token(
    sb: &Shared,
    inner: &mut Inner,
    order_id: &str,
    token_id: String,
    amount: i64,
) -> String {
    let card = inner.ledger.tokens.get(&token_id).map(|t| t.card.clone());
    let (planned, delay_ms) = inner.ledger.next_outcome(&token_id);
    start_payment(
        sb,
        inner,
        NewPayment {
            order_id,
            method: "CTOKEN",
            token_id: Some(token_id),
            card,
            amount,
            planned,
            delay_ms,
        },
    )
}

pub async fn order_status(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, order_id) = split_path(&path);
    if let Some(denied) = authorize(&sb, &headers, merchant) {
        return denied;
    }
    with_faults(
        &sb,
        Endpoint::OrderStatus,
        StatusCode::OK,
        |sb, decision| {
            let mut guard = sb.lock();
            run_due(sb, &mut guard, sb.now());
            let Some(order) = guard.ledger.known_order(order_id) else {
                return not_found("Order");
            };
            let body = status::lagging(&guard.ledger, order, wall_ms(), decision.status_lag_ms);
            success(StatusCode::OK, body, "Fetched the order status.")
        },
    )
    .await
}

pub async fn order_tokens(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, order_id) = split_path(&path);
    if let Some(denied) = authorize(&sb, &headers, merchant) {
        return denied;
    }
    with_faults(&sb, Endpoint::Tokens, StatusCode::OK, |sb, _| {
        let guard = sb.lock();
        if guard.ledger.known_order(order_id).is_none() {
            return not_found("Order");
        }
        let tokens: Vec<Value> = guard
            .ledger
            .tokens
            .values()
            .filter(|t| t.order_id == order_id)
            .map(|t| {
                json!({
                    "cardBrand": t.card.brand,
                    "cardholderName": t.card.holder,
                    "tokenId": t.id,
                    "createdAt": crate::rfc3339(t.created_at),
                    "expiryMonth": t.card.expiry_month,
                    "expiryYear": t.card.expiry_year,
                    "truncatedPan": t.card.last4,
                    "cardArt": CARD_ART,
                })
            })
            .collect();
        success(
            StatusCode::OK,
            json!(tokens),
            "Fetched the card information.",
        )
    })
    .await
}

/// Cancels an order that is not completed. Every payment still in flight on it is cancelled
/// too, under the same lock that settles payments: once this answers, no money can move on the
/// order, even through a payment the caller does not know about. Unless the `payment_survives`
/// fault says otherwise: the provider's documents promise no such fence, so tests can meet a
/// provider whose confirmed cancel leaves a payment in flight to complete.
pub async fn cancel_order(
    State(sb): State<Shared>,
    Path(path): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let (merchant, order_id) = split_path(&path);
    if let Some(denied) = authorize(&sb, &headers, merchant) {
        return denied;
    }
    with_faults(
        &sb,
        Endpoint::CancelOrder,
        StatusCode::OK,
        |sb, decision| {
            let mut guard = sb.lock();
            let inner = &mut *guard;
            let Some(order) = inner.ledger.known_order(order_id) else {
                return not_found("Order");
            };
            let cancelled = json!({"orderId": order_id, "orderStatus": "PAYMENT_CANCELLED"});
            if inner
                .ledger
                .payments_of(order)
                .any(|p| p.status == PaymentStatus::PaymentCompleted)
            {
                return business(
                    StatusCode::OK,
                    "OR_0040: A completed order cannot be cancelled",
                );
            }
            if order.cancelled {
                return success(StatusCode::OK, cancelled, "Order already cancelled.");
            }
            if !decision.payment_survives {
                for payment_id in order.payments.clone() {
                    cancel_in_flight(sb, inner, &payment_id, Some("ORDER_CANCELLED"));
                }
            }
            if let Some(order) = inner.ledger.orders.get_mut(order_id) {
                order.cancelled = true;
            }
            status::record(&mut inner.ledger, order_id, wall_ms());
            webhooks::emit(sb, inner, order_id, None, "order.cancelled");
            sb.persist(inner);
            success(StatusCode::OK, cancelled, "Order cancelled.")
        },
    )
    .await
}
