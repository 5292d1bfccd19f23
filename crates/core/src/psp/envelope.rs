//! Turns a provider answer into data or a classified error. The key distinction for the money
//! path is whether the provider *definitely did nothing* (a refusal) or the outcome is *unknown*
//! (timeout, 5xx, unreadable body), which must be reconciled before anything is retried.

use serde_json::Value;

use crate::json_read::{self, FromJson, Object};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PspError {
    /// `"status": "ERROR"` (often with HTTP 200/201): the provider refused; nothing happened.
    Business { code: String, message: String },
    /// 400: the provider could not read the request; nothing happened.
    Rejected { status: u16 },
    /// 401/403: our credentials are wrong. Nothing happened; an operator must fix the settings.
    Unauthorized,
    /// 404: no such order or payment.
    NotFound,
    /// 429, 5xx: the provider may or may not have acted.
    Unavailable { status: u16 },
    /// No answer in time: the provider may or may not have acted.
    Timeout,
    /// The connection failed before an answer.
    Network,
    /// A success status with a body we cannot read: the provider may have acted.
    Garbage,
    /// Never sent: something on our side was not ready (e.g. the card not yet readable).
    Local { code: String },
}

impl PspError {
    /// True when the provider may have carried out the request despite the error.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            PspError::Unavailable { .. }
                | PspError::Timeout
                | PspError::Network
                | PspError::Garbage
        )
    }

    /// True when the provider answered that it did not act on this request: trying again may
    /// or may not help, but nothing happened. (Unauthorized is our misconfiguration, not a
    /// refusal of the request, and must never fail a customer's charge.)
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            PspError::Business { .. } | PspError::Rejected { .. } | PspError::NotFound
        )
    }

    /// A short code for the ledger and logs: the provider's code or our own, never its free text.
    pub fn code(&self) -> String {
        match self {
            PspError::Business { code, .. } => code.clone(),
            PspError::Rejected { status } => format!("provider_http_{status}"),
            PspError::Unauthorized => "provider_unauthorized".into(),
            PspError::NotFound => "provider_not_found".into(),
            PspError::Unavailable { status } => format!("provider_http_{status}"),
            PspError::Timeout => "provider_timeout".into(),
            PspError::Network => "provider_network_error".into(),
            PspError::Garbage => "provider_unreadable_response".into(),
            PspError::Local { code } => code.clone(),
        }
    }
}

impl std::fmt::Display for PspError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PspError::Business { code, message } => {
                write!(f, "provider refused ({code}: {message})")
            }
            other => f.write_str(&other.code()),
        }
    }
}

/// What the provider's envelope says: `status`, `message` and `data`, each optional.
struct Envelope {
    status: Option<String>,
    data: Value,
    message: Option<String>,
}

impl Envelope {
    fn read(body: &[u8]) -> Option<Envelope> {
        let value = json_read::parse(body)?;
        let o = Object::new(&value)?;
        let read = Envelope {
            status: o.optional_text("status"),
            data: o.get("data").cloned().unwrap_or(Value::Null),
            message: o.optional_text("message"),
        };
        o.finish(read)
    }
}

/// Interprets one answer. `T` is the type of `data`.
pub fn interpret<T: FromJson>(http_status: u16, body: &[u8]) -> Result<T, PspError> {
    match http_status {
        401 | 403 => return Err(PspError::Unauthorized),
        404 => return Err(PspError::NotFound),
        429 | 500..=599 => {
            return Err(PspError::Unavailable {
                status: http_status,
            });
        }
        200..=299 | 400..=499 => {}
        _ => {
            return Err(PspError::Unavailable {
                status: http_status,
            });
        }
    }
    let envelope = match Envelope::read(body) {
        Some(e) => e,
        None if (400..=499).contains(&http_status) => {
            return Err(PspError::Rejected {
                status: http_status,
            });
        }
        None => return Err(PspError::Garbage),
    };
    // A business error wins over the HTTP code: the provider answers them with 200/201.
    if envelope.status.as_deref() == Some("ERROR") {
        let message = envelope.message.unwrap_or_default();
        return Err(business_error(&message));
    }
    if (400..=499).contains(&http_status) {
        return Err(PspError::Rejected {
            status: http_status,
        });
    }
    if envelope.status.as_deref() != Some("SUCCESS") {
        return Err(PspError::Garbage);
    }
    // Only the envelope's own members are refused when named twice; within `data` the last
    // one stands, as it always has.
    let mut data = envelope.data;
    json_read::forget_duplicates(&mut data);
    T::from_json(&data).ok_or(PspError::Garbage)
}

/// Splits `"OR_0037: Invalid total order price"` into code and message, and scrubs the message
/// of anything that looks like a provider id (a token id is 18 hex characters), so the provider's
/// free text can be stored and shown without ever carrying a token.
pub fn business_error(message: &str) -> PspError {
    let (code, text) = match message.split_once(':') {
        Some((code, text)) if is_error_code(code.trim()) => (code.trim().to_owned(), text.trim()),
        _ => ("provider_error".to_owned(), message.trim()),
    };
    PspError::Business {
        code,
        message: scrub(text),
    }
}

fn is_error_code(s: &str) -> bool {
    let (prefix, digits) = match s.split_once('_') {
        Some(parts) => parts,
        None => return false,
    };
    (1..=4).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Replaces runs of 12+ hex digits with `[id]` and bounds the length.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(200));
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 12 {
            out.push_str("[id]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    if out.chars().count() > 200 {
        out = out.chars().take(200).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psp::types::{CreatedOrder, InitiatedPayment};

    #[test]
    fn success_envelope_yields_data() {
        let o: CreatedOrder = interpret(
            201,
            br#"{"status":"SUCCESS","data":{"orderId":"abc","paymentPageLink":"https://p/x"}}"#,
        )
        .unwrap();
        assert_eq!(o.order_id, "abc");
        assert_eq!(o.payment_id, None);
    }

    #[test]
    fn business_errors_with_http_200_are_errors_with_their_code() {
        let e = interpret::<InitiatedPayment>(
            200,
            br#"{"status":"ERROR","message":"PS_0025: Payment initiation failed"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            PspError::Business {
                code: "PS_0025".into(),
                message: "Payment initiation failed".into()
            }
        );
        assert!(!e.outcome_unknown());
    }

    #[test]
    fn http_classes_map_to_known_and_unknown_outcomes() {
        let unauthorized = br#"{"status":"ERROR","message":"Unauthorized access. Please provide valid credentials to access this endpoint."}"#;
        assert_eq!(
            interpret::<CreatedOrder>(401, unauthorized),
            Err(PspError::Unauthorized)
        );
        assert_eq!(interpret::<CreatedOrder>(404, b""), Err(PspError::NotFound));
        assert_eq!(
            interpret::<CreatedOrder>(400, b"<html>"),
            Err(PspError::Rejected { status: 400 })
        );
        for status in [429, 500, 502, 503] {
            let e = interpret::<CreatedOrder>(status, b"{}").unwrap_err();
            assert!(e.outcome_unknown(), "{status}");
        }
    }

    #[test]
    fn garbage_success_bodies_are_unknown_outcomes() {
        for body in [
            &b"not json"[..],
            b"{}",
            br#"{"status":"SUCCESS","data":{"nope":1}}"#,
        ] {
            let e = interpret::<CreatedOrder>(201, body).unwrap_err();
            assert_eq!(e, PspError::Garbage, "{}", String::from_utf8_lossy(body));
            assert!(e.outcome_unknown());
        }
    }

    #[test]
    fn envelope_members_named_twice_are_unreadable_but_data_keeps_its_last() {
        for body in [
            &br#"{"status":"SUCCESS","status":"ERROR","data":{"orderId":"a"}}"#[..],
            br#"{"status":"SUCCESS","data":{"orderId":"a"},"data":{"orderId":"b"}}"#,
            br#"{"status":"SUCCESS","status":3,"data":{"orderId":"a"}}"#,
        ] {
            let e = interpret::<CreatedOrder>(201, body).unwrap_err();
            assert_eq!(e, PspError::Garbage, "{}", String::from_utf8_lossy(body));
        }
        let o: CreatedOrder = interpret(
            201,
            br#"{"status":"SUCCESS","x":1,"x":2,"data":{"orderId":"a","orderId":"b"}}"#,
        )
        .unwrap();
        assert_eq!(o.order_id, "b");
    }

    #[test]
    fn answers_are_read_by_the_rules_of_their_types() {
        use crate::psp::types::{OrderStatus, Token};
        let status = |data: &str| {
            interpret::<OrderStatus>(
                200,
                format!(r#"{{"status":"SUCCESS","data":{data}}}"#).as_bytes(),
            )
        };
        let s = status(r#"{"orderStatus":"PENDING"}"#).unwrap();
        assert!(s.payments.is_empty());
        let s = status(
            r#"{"orderStatus":"X","payments":[
                {"paymentId":"p","paymentStatus":"S","amount":" 12 "},
                {"paymentId":"q","paymentStatus":"S","amount":"twelve"},
                {"paymentId":"r","paymentStatus":"S","amount":null,"paymentMethod":null}]}"#,
        )
        .unwrap();
        let amounts: Vec<_> = s.payments.iter().map(|p| p.amount).collect();
        assert_eq!(amounts, [Some(12), None, None]);
        for bad in [
            r#"{"orderStatus":"X","payments":null}"#,
            r#"{"orderStatus":"X","payments":[{"paymentId":"p","paymentStatus":"S","amount":1.5}]}"#,
            r#"{"orderStatus":"X","payments":[{"paymentId":"p","paymentStatus":"S","amount":true}]}"#,
            r#"{"orderStatus":"X","payments":[{"paymentId":"p"}]}"#,
            r#"{"orderStatus":null}"#,
        ] {
            assert_eq!(status(bad), Err(PspError::Garbage), "{bad}");
        }
        let tokens = |data: &str| {
            interpret::<Option<Vec<Token>>>(
                200,
                format!(r#"{{"status":"SUCCESS","data":{data}}}"#).as_bytes(),
            )
        };
        assert_eq!(tokens("null"), Ok(None));
        assert_eq!(
            tokens(r#"[{"tokenId":"t","expiryMonth":12,"expiryYear":2030}]"#)
                .unwrap()
                .unwrap()[0]
                .expiry_month,
            Some(12)
        );
        assert_eq!(
            tokens(r#"[{"tokenId":"t","expiryMonth":300}]"#),
            Err(PspError::Garbage)
        );
        assert_eq!(
            interpret::<CreatedOrder>(201, br#"{"status":"SUCCESS"}"#),
            Err(PspError::Garbage)
        );
    }

    #[test]
    fn provider_text_is_scrubbed_of_ids() {
        let PspError::Business { message, .. } =
            business_error("PS_0031: Token 822d544dc48c200308 is not valid for order 12")
        else {
            panic!()
        };
        assert_eq!(message, "Token [id] is not valid for order 12");
        assert!(
            matches!(business_error("no code here"), PspError::Business { code, .. } if code == "provider_error")
        );
        assert_eq!(scrub(&"a".repeat(500)), "[id]");
    }
}
