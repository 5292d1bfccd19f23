//! The hosted payment page behind `paymentPageLink`: a person types a test card and pays.
//! One-shot, like the provider's: once an attempt started, the link is spent. A card number that
//! fails the Luhn check is refused without spending it.

use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::cards;
use crate::model::*;
use crate::processing::{NewPayment, start_payment, wait_final};
use crate::state::{Inner, Shared};

#[derive(Debug, Default, Deserialize)]
pub struct PayForm {
    #[serde(rename = "cardNumber", default)]
    pub card_number: String,
    #[serde(default)]
    pub expiry: String,
    #[serde(default)]
    pub cvc: String,
    #[serde(default)]
    pub name: String,
}

/// Why an attempt did not start.
#[derive(Debug)]
pub enum Refusal {
    UnknownOrder,
    /// Not a hosted-page purchase: nothing to pay on a page.
    NotPayable,
    /// The link is spent (an attempt ended, or the order was cancelled).
    Expired,
    /// The form is wrong; the link is not spent. The message is for the person paying.
    Invalid(String),
}

/// What paying on the page (or through the control API) started.
pub struct Attempt {
    pub payment_id: String,
}

/// Starts the payment of a hosted-page order with a card.
pub fn attempt(
    sb: &Shared,
    inner: &mut Inner,
    order_id: &str,
    form: &PayForm,
) -> Result<Attempt, Refusal> {
    let order = inner
        .ledger
        .known_order(order_id)
        .ok_or(Refusal::UnknownOrder)?;
    if order.terminal != Terminal::PaymentPage || order.kind != OrderKind::Purchase {
        return Err(Refusal::NotPayable);
    }
    if order.link_used || order.cancelled {
        return Err(Refusal::Expired);
    }
    let number = cards::normalize(&form.card_number);
    if !cards::luhn_valid(&number) {
        return Err(Refusal::Invalid(
            "That card number is not valid. Check it and try again.".into(),
        ));
    }
    let (month, year) = if form.expiry.trim().is_empty() {
        (12, 2031)
    } else {
        cards::parse_expiry(&form.expiry)
            .ok_or_else(|| Refusal::Invalid("The expiry date is not valid: use MM/YY.".into()))?
    };
    let (now_outcome, later) = cards::outcomes(&number);
    let card = Card {
        brand: cards::brand(&number).into(),
        last4: number[number.len() - 4..].to_owned(),
        expiry_month: month,
        expiry_year: year,
        holder: match form.name.trim() {
            "" => "Card Holder".into(),
            name => name.to_owned(),
        },
        later: Some(later),
    };
    let amount = order.amount;
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
    Ok(Attempt { payment_id })
}

/// How long a page (or the control API) waits for the payment to become final.
pub fn settle_wait(sb: &Shared) -> Duration {
    Duration::from_millis(sb.config.processing_ms) + Duration::from_secs(10)
}

pub async fn show(State(sb): State<Shared>, Path(order_id): Path<String>) -> Response {
    let guard = sb.lock();
    match guard.ledger.known_order(&order_id) {
        Some(o)
            if o.terminal == Terminal::PaymentPage
                && o.kind == OrderKind::Purchase
                && !o.link_used
                && !o.cancelled =>
        {
            (
                [(header::CACHE_CONTROL, "no-store")],
                Html(form_page(o, None, None)),
            )
                .into_response()
        }
        _ => expired(),
    }
}

/// The form's POST: pays, waits until the payment is final (like the provider's page does),
/// then sends the browser to the shop's redirect URL for the outcome, or shows the result.
pub async fn pay(
    State(sb): State<Shared>,
    Path(order_id): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    let started = {
        let mut guard = sb.lock();
        attempt(&sb, &mut guard, &order_id, &form).map_err(|refusal| {
            let order = guard.ledger.orders.get(&order_id).cloned();
            (refusal, order)
        })
    };
    let payment_id = match started {
        Ok(a) => a.payment_id,
        Err((Refusal::Invalid(message), Some(order))) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Html(form_page(&order, Some(&message), Some(&form))),
            )
                .into_response();
        }
        Err(_) => return expired(),
    };
    let final_status = wait_final(&sb, &payment_id, settle_wait(&sb)).await;
    let (redirect, failure_redirect) = {
        let guard = sb.lock();
        guard
            .ledger
            .orders
            .get(&order_id)
            .map_or((None, None), |o| {
                (o.redirect_url.clone(), o.failure_redirect_url.clone())
            })
    };
    match final_status {
        Some(PaymentStatus::PaymentCompleted) => match redirect {
            Some(url) => Redirect::to(&url).into_response(),
            None => result_page("Payment approved", "Thank you. You can close this page."),
        },
        Some(s) if s.is_final() => match failure_redirect {
            Some(url) => Redirect::to(&url).into_response(),
            None => result_page(
                "Payment declined",
                "The payment did not go through. Ask the shop for a new payment link.",
            ),
        },
        _ => result_page(
            "Payment processing",
            "The payment is still being processed. The shop will let you know.",
        ),
    }
}

/// Text for HTML, attributes included.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page's colours. Every text/background pair meets WCAG AA (4.5:1; the unit tests compute
/// the ratios): the Pay button's white on green is 5.7:1 (it was 2.55:1 on `#0b5`).
const INK: &str = "#1d2330";
const PAPER: &str = "#ffffff";
const MUTED: &str = "#5c6370";
const ERROR: &str = "#b42318";
const PAY: &str = "#067647";
const PAY_HOVER: &str = "#05603a";
const BUSY: &str = "#d5dbe3";
/// Field borders are not text: 3:1 is their bar (WCAG 1.4.11).
const BORDER: &str = "#8a8f98";

/// Every box is `border-box` and every grid track may shrink, so nothing is wider than the
/// screen (a 390 px phone) and the expiry and CVC fields share their row at any width.
fn style() -> String {
    format!(
        "*,*::before,*::after{{box-sizing:border-box}}\
body{{font-family:system-ui,sans-serif;color:{INK};background:#f3f4f6;display:grid;place-items:center;min-height:100vh;margin:0;padding:1rem}}\
main{{background:{PAPER};padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0001;width:100%;max-width:24rem;min-width:0}}\
@media (max-width:30rem){{body{{padding:.75rem}}main{{padding:1.25rem}}}}\
h1{{margin-top:0}}\
label{{display:grid;gap:.25rem;margin:.6rem 0;font-size:.9rem;min-width:0}}\
input{{font:inherit;padding:.5rem;border:1px solid {BORDER};border-radius:6px;width:100%;min-width:0}}\
.row{{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:.75rem}}\
button{{width:100%;margin-top:1rem;padding:.7rem;font:inherit;font-weight:600;border:0;border-radius:6px;background:{PAY};color:{PAPER};cursor:pointer}}\
button:hover:not(:disabled){{background:{PAY_HOVER}}}\
button:disabled{{background:{BUSY};color:{INK};cursor:progress}}\
.error{{color:{ERROR}}}.muted{{color:{MUTED};font-size:.85rem}}.amount{{font-size:1.6rem;font-weight:600}}"
    )
}

/// One payment per link: once the form is sent, the button is disabled and says so, so a double
/// click or a second Enter does not post the spent link again (which would show "expired" while
/// the first attempt is being paid). Restored if the browser brings the page back from its cache.
const BUSY_SCRIPT: &str = "<script>\
const form=document.querySelector('form'),button=form.querySelector('button'),idle=button.textContent;\
form.addEventListener('submit',e=>{if(button.disabled){e.preventDefault();return}\
button.disabled=true;button.setAttribute('aria-busy','true');button.textContent='Processing payment…'});\
addEventListener('pageshow',e=>{if(e.persisted){button.disabled=false;button.removeAttribute('aria-busy');button.textContent=idle}});\
</script>";

/// A whole page in the sandbox's style, with no external assets.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<link rel="icon" href="data:,"><style>{style}</style></head>
<body><main>{body}</main></body></html>"#,
        style = style()
    )
}

fn expired() -> Response {
    (
        StatusCode::GONE,
        [(header::CACHE_CONTROL, "no-store")],
        Html(page(
            "Invalid or Expired Link",
            "<h1>Invalid or Expired Link</h1><p>This payment link was already used or is no \
             longer valid. Ask the shop for a new one.</p>",
        )),
    )
        .into_response()
}

fn result_page(title: &str, text: &str) -> Response {
    Html(page(title, &format!("<h1>{title}</h1><p>{text}</p>"))).into_response()
}

/// `299.00 SEK` from minor units and the numeric currency code.
pub(crate) fn amount_text(minor: i64, currency: &str) -> String {
    let code = match currency {
        "752" => "SEK",
        "978" => "EUR",
        "208" => "DKK",
        other => other,
    };
    format!("{}.{:02} {code}", minor / 100, minor % 100)
}

fn form_page(order: &Order, error: Option<&str>, values: Option<&PayForm>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="error" role="alert">{}</p>"#, escape(e))
    });
    let value = |f: fn(&PayForm) -> &str| values.map_or(String::new(), |p| escape(f(p)));
    page(
        "Pay",
        &format!(
            r#"<h1>Payment</h1><p class="amount">{amount}</p>
<p class="muted">PSP sandbox: no real card is charged, never type a real card number.
Test cards: 4111 1111 1111 1111 approves, 4000 0000 0000 0002 is declined.</p>{error}
<form method="post">
<label>Card number <input name="cardNumber" inputmode="numeric" autocomplete="cc-number" required value="{card}"></label>
<div class="row"><label>Expiry (MM/YY) <input name="expiry" placeholder="12/31" autocomplete="cc-exp" value="{expiry}"></label>
<label>CVC <input name="cvc" inputmode="numeric" autocomplete="cc-csc" maxlength="4"></label></div>
<label>Name on card <input name="name" autocomplete="cc-name" value="{name}"></label>
<button type="submit">Pay {amount}</button></form>{BUSY_SCRIPT}"#,
            amount = amount_text(order.amount, &order.currency),
            card = value(|p| &p.card_number),
            expiry = value(|p| &p.expiry),
            name = value(|p| &p.name),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_amounts_read_as_money() {
        assert_eq!(escape("<script>\"&'"), "&lt;script&gt;&quot;&amp;&#39;");
        assert_eq!(amount_text(29900, "752"), "299.00 SEK");
        assert_eq!(amount_text(305, "978"), "3.05 EUR");
    }

    /// WCAG 2 contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        let luminance = |hex: &str| {
            let channel = |i: usize| {
                let v =
                    f64::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap()) / 255.0;
                if v <= 0.03928 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2)
        };
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    #[test]
    fn contrast_is_computed_as_wcag_does() {
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!(
            (contrast("#ffffff", "#00bb55") - 2.55).abs() < 0.01,
            "the old Pay button"
        );
    }

    #[test]
    fn every_text_meets_wcag_aa_and_borders_three_to_one() {
        for (what, text, background) in [
            ("body text", INK, PAPER),
            ("muted text", MUTED, PAPER),
            ("errors", ERROR, PAPER),
            ("the Pay button", PAPER, PAY),
            ("the Pay button, hovered", PAPER, PAY_HOVER),
            ("the Pay button, busy", INK, BUSY),
        ] {
            let ratio = contrast(text, background);
            assert!(ratio >= 4.5, "{what}: {ratio:.2}:1");
        }
        assert!(contrast(BORDER, PAPER) >= 3.0);
        let css = style();
        for colour in [INK, MUTED, ERROR, PAY, PAY_HOVER, BUSY, BORDER] {
            assert!(css.contains(colour), "{colour} is used");
        }
    }
}
