//! The provider over `fetch`. Thin: building bodies and reading answers is in `types` and
//! `envelope`; this file only moves bytes, enforces the timeout and counts subrequests.

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{Either, select};
use recurring_core::json_read::FromJson;
use worker::{AbortController, Delay, Fetch, Headers, Method};

use crate::log::{Level, Log};
use crate::meter::Meter;
use crate::slots::Slots;
use recurring_core::config::PspConfig;
use recurring_core::psp::envelope::{PspError, interpret};
use recurring_core::psp::types::*;

pub struct PspClient<'a> {
    config: &'a PspConfig,
    meter: &'a Meter,
    connections: &'a Slots,
    log: &'a Log,
}

impl<'a> PspClient<'a> {
    pub fn new(
        config: &'a PspConfig,
        meter: &'a Meter,
        connections: &'a Slots,
        log: &'a Log,
    ) -> Self {
        PspClient {
            config,
            meter,
            connections,
            log,
        }
    }

    pub async fn create_order(&self, order: &CreateOrder) -> Result<CreatedOrder, PspError> {
        let body = serde_json::to_string(order).map_err(|_| PspError::Rejected { status: 0 })?;
        self.call(Method::Post, "/orders", Some(body), "create_order")
            .await
    }

    pub async fn initiate_payment(
        &self,
        order_id: &str,
        token_id: &str,
    ) -> Result<InitiatedPayment, PspError> {
        let body = InitiatePayment {
            order_id: order_id.to_owned(),
            payment_method: "CTOKEN".into(),
            payment_method_params: PaymentMethodParams {
                token_id: token_id.to_owned(),
            },
        };
        let body = serde_json::to_string(&body).map_err(|_| PspError::Rejected { status: 0 })?;
        self.call(Method::Post, "/payments", Some(body), "initiate_payment")
            .await
    }

    pub async fn order_status(&self, order_id: &str) -> Result<OrderStatus, PspError> {
        let path = format!("/orders/{}/status", path_segment(order_id)?);
        self.call(Method::Get, &path, None, "order_status").await
    }

    pub async fn tokens(&self, order_id: &str) -> Result<Vec<Token>, PspError> {
        let path = format!("/orders/{}/tokens", path_segment(order_id)?);
        let tokens: Option<Vec<Token>> = self.call(Method::Get, &path, None, "tokens").await?;
        Ok(tokens.unwrap_or_default())
    }

    /// Cancels an order that is not completed. Once this succeeds no payment can complete on
    /// the order any more, which is what lets a charge with an unknown attempt move on safely.
    pub async fn cancel_order(&self, order_id: &str) -> Result<(), PspError> {
        let path = format!("/orders/{}", path_segment(order_id)?);
        self.call(Method::Delete, &path, None, "cancel_order").await
    }

    /// Voids a completed payment that is not yet in the day's batch. Voiding is idempotent at
    /// the provider: a second void of a voided payment moves no money.
    pub async fn void_payment(&self, payment_id: &str) -> Result<VoidAnswer, PspError> {
        let path = format!("/payments/{}/void", path_segment(payment_id)?);
        self.call(Method::Put, &path, None, "void_payment").await
    }

    /// The receipt of a settled order; before settlement the provider refuses it.
    pub async fn receipt_link(&self, order_id: &str) -> Result<ReceiptLink, PspError> {
        let path = format!("/receipts/{}/link", path_segment(order_id)?);
        self.call(Method::Get, &path, None, "receipt_link").await
    }

    /// Asks the provider to email the receipt of a settled order. The address is in the body,
    /// which is never logged.
    pub async fn email_receipt(&self, order_id: &str, email: &str) -> Result<(), PspError> {
        let path = format!("/receipts/{}/email", path_segment(order_id)?);
        let body = serde_json::to_string(&ReceiptEmail {
            email: email.to_owned(),
        })
        .map_err(|_| PspError::Rejected { status: 0 })?;
        self.call(Method::Put, &path, Some(body), "receipt_email")
            .await
    }

    async fn call<T: FromJson>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        operation: &str,
    ) -> Result<T, PspError> {
        let sent = self.send(method, path, body).await?;
        let (status, result) = match sent.reply {
            Ok((status, bytes)) => (Some(status), interpret(status, &bytes)),
            Err(e) => (None, Err(e)),
        };
        self.log_call(operation, path, status, sent.started, result.as_ref().err());
        result
    }

    // The part of `call` that does not depend on the answer's type, kept out of it so that
    // each type does not carry its own copy of the exchange's state machine.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Sent, PspError> {
        let url = format!("{}{}", self.config.base_url, path);
        let headers = Headers::new();
        let set = |name: &str, value: &str| headers.set(name, value).map_err(|_| PspError::Network);
        set("API-KEY", &self.config.api_key)?;
        set("API-SECRET", &self.config.api_secret)?;
        set("MERCHANT-ID", &self.config.merchant_id)?;
        set("Content-Type", "application/json")?;
        set("Accept", "application/json")?;
        let request =
            crate::outbound::request(method.as_ref(), &url, Some(&headers), body.as_deref())
                .ok_or(PspError::Network)?;

        // The timeout starts once a connection is ours, never while waiting for one.
        let _connection = self.connections.acquire().await;
        self.meter.subrequest();
        let started = worker::Date::now().as_millis();
        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = async {
            let mut response = Fetch::Request(request).send_with_signal(&signal).await?;
            let status = response.status_code();
            let bytes = response.bytes().await?;
            Ok::<_, worker::Error>((status, bytes))
        };
        let timeout = Delay::from(Duration::from_millis(u64::from(self.config.timeout_ms)));
        let reply = match select(pin!(exchange), pin!(timeout)).await {
            Either::Left((Ok(answer), _)) => Ok(answer),
            Either::Left((Err(_), _)) => Err(PspError::Network),
            Either::Right(_) => {
                controller.abort();
                Err(PspError::Timeout)
            }
        };
        Ok(Sent { started, reply })
    }

    fn log_call(
        &self,
        operation: &str,
        path: &str,
        status: Option<u16>,
        started: u64,
        error: Option<&PspError>,
    ) {
        let elapsed = worker::Date::now().as_millis().saturating_sub(started);
        let outcome = match error {
            None => "ok".to_owned(),
            Some(e) => e.code(),
        };
        // Paths carry order ids only; bodies (which can carry a token) are never logged.
        let level = match error {
            None => Level::Info,
            Some(e) if e.is_refusal() => Level::Info,
            Some(_) => Level::Warn,
        };
        self.log.emit(
            level,
            "psp call",
            crate::fields! {
                "operation": operation,
                "path": path,
                "status": status,
                "outcome": outcome,
                "durationMs": elapsed,
            },
        );
    }
}

/// A request that went out: when, and the status and body that came back or why none did.
struct Sent {
    started: u64,
    reply: Result<(u16, Vec<u8>), PspError>,
}

/// Provider ids go into paths; refuse anything that could change the path.
fn path_segment(id: &str) -> Result<&str, PspError> {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(PspError::Rejected { status: 0 })
    }
}
