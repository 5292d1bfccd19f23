//! The hosted payment page behind `paymentPageLink`: the customer types a test card and pays.
//! One-shot, like the provider's: once an attempt started, the link is spent.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::model::*;
use crate::state::{Inner, NewPayment, Shared, start_payment};

#[derive(Debug, Deserialize)]
pub struct PayForm {
    #[serde(rename = "cardNumber")]
    pub card_number: String,
    #[serde(default)]
    pub expiry: String,
    #[serde(default)]
    pub cvc: String,
    #[serde(default)]
    pub name: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;background:#f3f4f6;display:grid;place-items:center;min-height:100vh;margin:0}}
main{{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0001;width:min(24rem,90vw)}}
label{{display:grid;gap:.25rem;margin:.6rem 0;font-size:.9rem}}input{{font:inherit;padding:.5rem;border:1px solid #ccc;border-radius:6px}}
button{{width:100%;margin-top:1rem;padding:.7rem;font:inherit;border:0;border-radius:6px;background:#0b5;color:#fff;cursor:pointer}}
.error{{color:#b42318}}.muted{{color:#667;font-size:.85rem}}.amount{{font-size:1.6rem;font-weight:600}}</style></head>
<body><main>{body}</main></body></html>"#
    )
}

fn expired() -> Response {
    (
        StatusCode::GONE,
        Html(page("Invalid or Expired Link", "<h1>Invalid or Expired Link</h1><p>This payment link was already used. Ask the shop for a new one.</p>")),
    )
        .into_response()
}

fn amount_text(minor: i64, currency: &str) -> String {
    let code = match currency {
        "752" => "SEK",
        "978" => "EUR",
        "208" => "DKK",
        other => other,
    };
    format!("{}.{:02} {code}", minor / 100, minor % 100)
}

fn form(order: &Order, error: Option<&str>, values: Option<&PayForm>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="error" role="alert">{}</p>"#, escape(e))
    });
    let v = |f: fn(&PayForm) -> &str| values.map_or(String::new(), |p| escape(f(p)));
    page(
        "Pay",
        &format!(
            r#"<h1>Payment</h1><p class="amount">{amount}</p>
<p class="muted">PSP sandbox. No real card is charged. Test cards: 4111 1111 1111 1111 approves.</p>{error}
<form method="post" action="/pay/{id}">
<label>Card number <input name="cardNumber" inputmode="numeric" autocomplete="cc-number" required value="{card}"></label>
<label>Expiry (MM/YY) <input name="expiry" placeholder="12/31" autocomplete="cc-exp" value="{expiry}"></label>
<label>CVC <input name="cvc" inputmode="numeric" autocomplete="cc-csc" value=""></label>
<label>Name on card <input name="name" autocomplete="cc-name" value="{name}"></label>
<button type="submit">Pay {amount}</button></form>"#,
            amount = amount_text(order.amount, &order.currency),
            id = escape(&order.id),
            card = v(|p| &p.card_number),
            expiry = v(|p| &p.expiry),
            name = v(|p| &p.name),
        ),
    )
}

pub async fn show(State(sb): State<Shared>, Path(order_id): Path<String>) -> Response {
    let guard = sb.lock();
    match guard.ledger.orders.get(&order_id) {
        Some(o) if o.terminal == Terminal::PaymentPage && !o.link_used && !o.cancelled => (
            [(header::CACHE_CONTROL, "no-store")],
            Html(form(o, None, None)),
        )
            .into_response(),
        _ => expired(),
    }
}

/// What paying on the page (or through the control API) started.
pub struct Attempt {
    pub payment_id: String,
    pub redirect: Option<String>,
}

/// Starts the payment of a hosted-page order with a card. `Err` carries a message for the page
/// (the attempt is not spent) or `None` when the link is spent or unknown.
pub fn attempt(
    sb: &Shared,
    inner: &mut Inner,
    order_id: &str,
    p: &PayForm,
) -> Result<Attempt, Option<String>> {
    let order = inner.ledger.orders.get(order_id).ok_or(None)?;
    if order.terminal != Terminal::PaymentPage || order.link_used || order.cancelled {
        return Err(None);
    }
    let number: String = p
        .card_number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if !luhn_valid(&number) {
        return Err(Some(
            "That card number is not valid. Check it and try again.".into(),
        ));
    }
    let (month, year) = parse_expiry(&p.expiry).unwrap_or((12, 2031));
    let (now_outcome, later) = card_outcomes(&number);
    let card = Card {
        brand: brand(&number).into(),
        last4: number[number.len() - 4..].to_owned(),
        expiry_month: month,
        expiry_year: year,
        holder: if p.name.trim().is_empty() {
            "Card Holder".into()
        } else {
            p.name.trim().to_owned()
        },
        later: Some(later),
    };
    let amount = order.amount;
    let redirect = match &now_outcome {
        Outcome::Approve => order.redirect_url.clone(),
        Outcome::Decline { .. } => order
            .failure_redirect_url
            .clone()
            .or_else(|| order.redirect_url.clone()),
    };
    if let Some(order) = inner.ledger.orders.get_mut(order_id) {
        order.link_used = true;
    }
    let payment_id = start_payment(
        sb,
        inner,
        NewPayment {
            order_id,
            method: "CARD",
            token_id: None,
            card: Some(card),
            amount,
            planned: now_outcome,
            delay_ms: None,
        },
    );
    Ok(Attempt {
        payment_id,
        redirect,
    })
}

fn parse_expiry(text: &str) -> Option<(u8, u16)> {
    let (m, y) = text.trim().split_once('/')?;
    let month: u8 = m.trim().parse().ok().filter(|m| (1..=12).contains(m))?;
    let year: u16 = y.trim().parse().ok()?;
    Some((month, if year < 100 { 2000 + year } else { year }))
}

pub async fn pay(
    State(sb): State<Shared>,
    Path(order_id): Path<String>,
    Form(form_data): Form<PayForm>,
) -> Response {
    let mut guard = sb.lock();
    let result = attempt(&sb, &mut guard, &order_id, &form_data);
    match result {
        Ok(Attempt {
            redirect: Some(url),
            ..
        }) => Redirect::to(&url).into_response(),
        Ok(Attempt { redirect: None, .. }) => Html(page(
            "Payment received",
            "<h1>Payment received</h1><p>You can close this page.</p>",
        ))
        .into_response(),
        Err(Some(message)) => {
            let order = guard.ledger.orders.get(&order_id).cloned();
            match order {
                Some(o) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Html(form(&o, Some(&message), Some(&form_data))),
                )
                    .into_response(),
                None => expired(),
            }
        }
        Err(None) => expired(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_accepts_two_and_four_digit_years() {
        assert_eq!(parse_expiry("07/30"), Some((7, 2030)));
        assert_eq!(parse_expiry(" 12 / 2031 "), Some((12, 2031)));
        assert_eq!(parse_expiry("13/30"), None);
        assert_eq!(parse_expiry("0730"), None);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<script>\"&"), "&lt;script&gt;&quot;&amp;");
    }
}
