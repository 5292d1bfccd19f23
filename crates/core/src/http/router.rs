//! Maps a method and path to a route, telling "no such path" (404) from "no such method" (405).

/// Who may call a route, which decides authentication and CORS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Monitoring: no authentication.
    Open,
    /// Anyone, typically a browser: nothing to protect but the service itself (rate limited by
    /// client address); CORS applies.
    Public,
    /// The customer's browser: `Authorization: Bearer <customer session>` names the customer;
    /// rate limited per customer; CORS applies as a second layer.
    Customer,
    /// The provider: the webhook signature is the authentication.
    Provider,
    /// The merchant's backend: `Authorization: Bearer MERCHANT_API_KEY`, no CORS.
    Merchant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionAction {
    Cancel,
    Pause,
    Resume,
    ChangePlan,
}

/// What a customer may do to one of their own subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalAction {
    /// Cancel at the end of the current period.
    Cancel,
    /// Undo a cancellation at period end.
    Reactivate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    ListPlans,
    CreateCustomerSession,
    DemoSession,
    CreateCheckout,
    GetCheckout(String),
    GetPaymentMethod(String),
    DeletePaymentMethod(String),
    ProviderWebhook,
    CreateCharge,
    GetCharge(String),
    ListCustomerCharges(String),
    CreateRefund(String),
    ListRefunds(String),
    GetRefund(String),
    ListSubscriptions,
    GetSubscription(String),
    ListSubscriptionEvents(String),
    SubscriptionAction(String, SubscriptionAction),
    RecordUsage,
    ListIncidents,
    GetIncident(String),
    ListEvents,
    GetEvent(String),
    RedeliverEvent(String),
    TestClockTick,
    ReadTestClock,
    PortalSubscriptions,
    PortalSubscriptionAction(String, PortalAction),
    PortalCharges,
    PortalReplaceCard,
    GetReceipt(String),
    EmailReceipt(String),
    ListPayouts,
    GetPayout(String),
    ReportSummary,
    ReportMrr,
    ReportChargesCsv,
    PreviewPlanChange(String),
    GetCustomerBalance(String),
    CreateTestClock,
    ListTestClocks,
    GetTestClock(String),
    DeleteTestClock(String),
    AdvanceTestClock(String),
    CreateCoupon,
    ListCoupons,
    GetCoupon(String),
    DeleteCoupon(String),
    SetSubscriptionDiscount(String),
    DeleteSubscriptionDiscount(String),
    SetCustomerDiscount(String),
    DeleteCustomerDiscount(String),
    RefundCustomerBalance(String),
    Monitoring,
}

impl Route {
    pub fn access(&self) -> Access {
        use Route::*;
        match self {
            Health => Access::Open,
            ListPlans | DemoSession => Access::Public,
            CreateCheckout
            | GetCheckout(_)
            | GetPaymentMethod(_)
            | PortalSubscriptions
            | PortalSubscriptionAction(..)
            | PortalCharges
            | PortalReplaceCard => Access::Customer,
            ProviderWebhook => Access::Provider,
            // Forgetting a card is the merchant's decision, never an anonymous browser's.
            DeletePaymentMethod(_) => Access::Merchant,
            CreateCustomerSession
            | CreateCharge
            | GetCharge(_)
            | ListCustomerCharges(_)
            | CreateRefund(_)
            | ListRefunds(_)
            | GetRefund(_)
            | ListSubscriptions
            | GetSubscription(_)
            | ListSubscriptionEvents(_)
            | SubscriptionAction(..)
            | RecordUsage
            | ListIncidents
            | GetIncident(_)
            | ListEvents
            | GetEvent(_)
            | RedeliverEvent(_)
            | TestClockTick
            | ReadTestClock
            | GetReceipt(_)
            | EmailReceipt(_)
            | ListPayouts
            | GetPayout(_)
            | ReportSummary
            | ReportMrr
            | ReportChargesCsv
            | PreviewPlanChange(_)
            | GetCustomerBalance(_)
            | CreateTestClock
            | ListTestClocks
            | GetTestClock(_)
            | DeleteTestClock(_)
            | AdvanceTestClock(_)
            | CreateCoupon
            | ListCoupons
            | GetCoupon(_)
            | DeleteCoupon(_)
            | SetSubscriptionDiscount(_)
            | DeleteSubscriptionDiscount(_)
            | SetCustomerDiscount(_)
            | DeleteCustomerDiscount(_)
            | RefundCustomerBalance(_)
            | Monitoring => Access::Merchant,
        }
    }

    /// The method and path template that resolve to this route, as `openapi.json` names them.
    /// Exhaustive on purpose: a new route does not compile until it has its template, and the
    /// tests then require it in [`ROUTES`] and in the document.
    pub fn template(&self) -> (&'static str, &'static str) {
        use Route::*;
        match self {
            Health => ("GET", "/health"),
            ListPlans => ("GET", "/v1/plans"),
            CreateCustomerSession => ("POST", "/v1/customer-sessions"),
            DemoSession => ("POST", "/v1/demo/session"),
            CreateCheckout => ("POST", "/v1/checkout"),
            GetCheckout(_) => ("GET", "/v1/checkout/{checkoutId}"),
            GetPaymentMethod(_) => ("GET", "/v1/customers/{customerRef}/payment-method"),
            DeletePaymentMethod(_) => ("DELETE", "/v1/customers/{customerRef}/payment-method"),
            ProviderWebhook => ("POST", "/v1/webhooks/psp"),
            CreateCharge => ("POST", "/v1/charges"),
            GetCharge(_) => ("GET", "/v1/charges/{chargeId}"),
            ListCustomerCharges(_) => ("GET", "/v1/customers/{customerRef}/charges"),
            CreateRefund(_) => ("POST", "/v1/charges/{chargeId}/refunds"),
            ListRefunds(_) => ("GET", "/v1/charges/{chargeId}/refunds"),
            GetRefund(_) => ("GET", "/v1/refunds/{refundId}"),
            ListSubscriptions => ("GET", "/v1/subscriptions"),
            GetSubscription(_) => ("GET", "/v1/subscriptions/{subscriptionId}"),
            ListSubscriptionEvents(_) => ("GET", "/v1/subscriptions/{subscriptionId}/events"),
            SubscriptionAction(_, action) => (
                "POST",
                match action {
                    Action::Cancel => "/v1/subscriptions/{subscriptionId}/cancel",
                    Action::Pause => "/v1/subscriptions/{subscriptionId}/pause",
                    Action::Resume => "/v1/subscriptions/{subscriptionId}/resume",
                    Action::ChangePlan => "/v1/subscriptions/{subscriptionId}/change-plan",
                },
            ),
            RecordUsage => ("POST", "/v1/usage"),
            ListIncidents => ("GET", "/v1/incidents"),
            GetIncident(_) => ("GET", "/v1/incidents/{incidentId}"),
            ListEvents => ("GET", "/v1/events"),
            GetEvent(_) => ("GET", "/v1/events/{eventId}"),
            RedeliverEvent(_) => ("POST", "/v1/events/{eventId}/redeliver"),
            TestClockTick => ("POST", "/v1/test-clock/tick"),
            ReadTestClock => ("GET", "/v1/test-clock"),
            PortalSubscriptions => ("GET", "/v1/portal/subscriptions"),
            PortalSubscriptionAction(_, action) => (
                "POST",
                match action {
                    PortalAction::Cancel => "/v1/portal/subscriptions/{subscriptionId}/cancel",
                    PortalAction::Reactivate => {
                        "/v1/portal/subscriptions/{subscriptionId}/reactivate"
                    }
                },
            ),
            PortalCharges => ("GET", "/v1/portal/charges"),
            PortalReplaceCard => ("POST", "/v1/portal/payment-method"),
            GetReceipt(_) => ("GET", "/v1/charges/{chargeId}/receipt"),
            EmailReceipt(_) => ("POST", "/v1/charges/{chargeId}/receipt/email"),
            ListPayouts => ("GET", "/v1/payouts"),
            GetPayout(_) => ("GET", "/v1/payouts/{payoutId}"),
            ReportSummary => ("GET", "/v1/reports/summary"),
            ReportMrr => ("GET", "/v1/reports/mrr"),
            ReportChargesCsv => ("GET", "/v1/reports/charges.csv"),
            GetCustomerBalance(_) => ("GET", "/v1/customers/{customerRef}/balance"),
            CreateTestClock => ("POST", "/v1/test-clocks"),
            ListTestClocks => ("GET", "/v1/test-clocks"),
            GetTestClock(_) => ("GET", "/v1/test-clocks/{testClockId}"),
            DeleteTestClock(_) => ("DELETE", "/v1/test-clocks/{testClockId}"),
            AdvanceTestClock(_) => ("POST", "/v1/test-clocks/{testClockId}/advance"),
            CreateCoupon => ("POST", "/v1/coupons"),
            ListCoupons => ("GET", "/v1/coupons"),
            GetCoupon(_) => ("GET", "/v1/coupons/{couponId}"),
            DeleteCoupon(_) => ("DELETE", "/v1/coupons/{couponId}"),
            SetSubscriptionDiscount(_) => ("POST", "/v1/subscriptions/{subscriptionId}/discount"),
            DeleteSubscriptionDiscount(_) => {
                ("DELETE", "/v1/subscriptions/{subscriptionId}/discount")
            }
            SetCustomerDiscount(_) => ("POST", "/v1/customers/{customerRef}/discount"),
            DeleteCustomerDiscount(_) => ("DELETE", "/v1/customers/{customerRef}/discount"),
            RefundCustomerBalance(_) => ("POST", "/v1/customers/{customerRef}/balance/refund"),
            Monitoring => ("GET", "/v1/monitoring"),
            PreviewPlanChange(_) => (
                "POST",
                "/v1/subscriptions/{subscriptionId}/change-plan/preview",
            ),
        }
    }
}

/// Every route, as (method, path template): the list `openapi.json` must describe, no more and
/// no fewer (`tests/openapi.rs`). Each entry is checked to resolve to the route of that template.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/v1/plans"),
    ("POST", "/v1/customer-sessions"),
    ("POST", "/v1/demo/session"),
    ("POST", "/v1/checkout"),
    ("GET", "/v1/checkout/{checkoutId}"),
    ("GET", "/v1/customers/{customerRef}/payment-method"),
    ("DELETE", "/v1/customers/{customerRef}/payment-method"),
    ("GET", "/v1/customers/{customerRef}/charges"),
    ("GET", "/v1/customers/{customerRef}/balance"),
    ("POST", "/v1/customers/{customerRef}/balance/refund"),
    ("POST", "/v1/customers/{customerRef}/discount"),
    ("DELETE", "/v1/customers/{customerRef}/discount"),
    ("POST", "/v1/subscriptions/{subscriptionId}/discount"),
    ("DELETE", "/v1/subscriptions/{subscriptionId}/discount"),
    ("POST", "/v1/coupons"),
    ("GET", "/v1/monitoring"),
    ("GET", "/v1/coupons"),
    ("GET", "/v1/coupons/{couponId}"),
    ("DELETE", "/v1/coupons/{couponId}"),
    ("GET", "/v1/portal/subscriptions"),
    ("POST", "/v1/portal/subscriptions/{subscriptionId}/cancel"),
    (
        "POST",
        "/v1/portal/subscriptions/{subscriptionId}/reactivate",
    ),
    ("GET", "/v1/portal/charges"),
    ("POST", "/v1/portal/payment-method"),
    ("POST", "/v1/webhooks/psp"),
    ("POST", "/v1/charges"),
    ("GET", "/v1/charges/{chargeId}"),
    ("POST", "/v1/charges/{chargeId}/refunds"),
    ("GET", "/v1/charges/{chargeId}/refunds"),
    ("GET", "/v1/charges/{chargeId}/receipt"),
    ("POST", "/v1/charges/{chargeId}/receipt/email"),
    ("GET", "/v1/refunds/{refundId}"),
    ("GET", "/v1/payouts"),
    ("GET", "/v1/payouts/{payoutId}"),
    ("GET", "/v1/reports/summary"),
    ("GET", "/v1/reports/mrr"),
    ("GET", "/v1/reports/charges.csv"),
    ("GET", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions/{subscriptionId}"),
    ("GET", "/v1/subscriptions/{subscriptionId}/events"),
    ("POST", "/v1/subscriptions/{subscriptionId}/cancel"),
    ("POST", "/v1/subscriptions/{subscriptionId}/pause"),
    ("POST", "/v1/subscriptions/{subscriptionId}/resume"),
    ("POST", "/v1/subscriptions/{subscriptionId}/change-plan"),
    (
        "POST",
        "/v1/subscriptions/{subscriptionId}/change-plan/preview",
    ),
    ("POST", "/v1/usage"),
    ("GET", "/v1/incidents"),
    ("GET", "/v1/incidents/{incidentId}"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/{eventId}"),
    ("POST", "/v1/events/{eventId}/redeliver"),
    ("POST", "/v1/test-clock/tick"),
    ("GET", "/v1/test-clock"),
    ("POST", "/v1/test-clocks"),
    ("GET", "/v1/test-clocks"),
    ("GET", "/v1/test-clocks/{testClockId}"),
    ("DELETE", "/v1/test-clocks/{testClockId}"),
    ("POST", "/v1/test-clocks/{testClockId}/advance"),
];

/// A concrete path for a template: each `{parameter}` becomes a sample value.
pub fn sample_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "sample_1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

// The route variant of the same name shadows the enum inside `resolve`.
use SubscriptionAction as Action;

#[derive(Debug, PartialEq, Eq)]
pub enum Matched {
    Route(Route),
    MethodNotAllowed(&'static [&'static str]),
    NotFound,
}

/// Resolves a request line. `path` is the URL path without the query string.
pub fn resolve(method: &str, path: &str) -> Matched {
    let trimmed = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Matched::NotFound;
    }
    let owned = |s: &str| s.to_owned();
    use Route::*;

    // Each arm lists the methods a path answers to; anything else on that path is a 405.
    let (allowed, route): (&'static [&'static str], Option<Route>) = match segments.as_slice() {
        ["health"] => (&["GET"], is(method, "GET").then_some(Health)),
        ["v1", "plans"] => (&["GET"], is(method, "GET").then_some(ListPlans)),
        ["v1", "customer-sessions"] => (
            &["POST"],
            is(method, "POST").then_some(CreateCustomerSession),
        ),
        ["v1", "demo", "session"] => (&["POST"], is(method, "POST").then_some(DemoSession)),
        ["v1", "portal", "subscriptions"] => {
            (&["GET"], is(method, "GET").then_some(PortalSubscriptions))
        }
        ["v1", "portal", "subscriptions", id, action] => {
            let action = match *action {
                "cancel" => PortalAction::Cancel,
                "reactivate" => PortalAction::Reactivate,
                _ => return Matched::NotFound,
            };
            (
                &["POST"],
                is(method, "POST").then(|| PortalSubscriptionAction(owned(id), action)),
            )
        }
        ["v1", "portal", "charges"] => (&["GET"], is(method, "GET").then_some(PortalCharges)),
        ["v1", "portal", "payment-method"] => {
            (&["POST"], is(method, "POST").then_some(PortalReplaceCard))
        }
        ["v1", "checkout"] => (&["POST"], is(method, "POST").then_some(CreateCheckout)),
        ["v1", "checkout", id] => (&["GET"], is(method, "GET").then(|| GetCheckout(owned(id)))),
        ["v1", "customers", customer, "payment-method"] => (
            &["GET", "DELETE"],
            match method {
                "GET" => Some(GetPaymentMethod(owned(customer))),
                "DELETE" => Some(DeletePaymentMethod(owned(customer))),
                _ => None,
            },
        ),
        ["v1", "customers", customer, "balance"] => (
            &["GET"],
            is(method, "GET").then(|| GetCustomerBalance(owned(customer))),
        ),
        ["v1", "customers", customer, "balance", "refund"] => (
            &["POST"],
            is(method, "POST").then(|| RefundCustomerBalance(owned(customer))),
        ),
        ["v1", "customers", customer, "discount"] => (
            &["POST", "DELETE"],
            match method {
                "POST" => Some(SetCustomerDiscount(owned(customer))),
                "DELETE" => Some(DeleteCustomerDiscount(owned(customer))),
                _ => None,
            },
        ),
        ["v1", "coupons"] => (
            &["GET", "POST"],
            match method {
                "GET" => Some(ListCoupons),
                "POST" => Some(CreateCoupon),
                _ => None,
            },
        ),
        ["v1", "coupons", id] => (
            &["GET", "DELETE"],
            match method {
                "GET" => Some(GetCoupon(owned(id))),
                "DELETE" => Some(DeleteCoupon(owned(id))),
                _ => None,
            },
        ),
        ["v1", "customers", customer, "charges"] => (
            &["GET"],
            is(method, "GET").then(|| ListCustomerCharges(owned(customer))),
        ),
        ["v1", "webhooks", "psp"] => (&["POST"], is(method, "POST").then_some(ProviderWebhook)),
        ["v1", "charges"] => (&["POST"], is(method, "POST").then_some(CreateCharge)),
        ["v1", "charges", id] => (&["GET"], is(method, "GET").then(|| GetCharge(owned(id)))),
        ["v1", "charges", id, "refunds"] => (
            &["GET", "POST"],
            match method {
                "POST" => Some(CreateRefund(owned(id))),
                "GET" => Some(ListRefunds(owned(id))),
                _ => None,
            },
        ),
        ["v1", "charges", id, "receipt"] => {
            (&["GET"], is(method, "GET").then(|| GetReceipt(owned(id))))
        }
        ["v1", "charges", id, "receipt", "email"] => (
            &["POST"],
            is(method, "POST").then(|| EmailReceipt(owned(id))),
        ),
        ["v1", "refunds", id] => (&["GET"], is(method, "GET").then(|| GetRefund(owned(id)))),
        ["v1", "payouts"] => (&["GET"], is(method, "GET").then_some(ListPayouts)),
        ["v1", "payouts", id] => (&["GET"], is(method, "GET").then(|| GetPayout(owned(id)))),
        ["v1", "reports", "summary"] => (&["GET"], is(method, "GET").then_some(ReportSummary)),
        ["v1", "reports", "mrr"] => (&["GET"], is(method, "GET").then_some(ReportMrr)),
        ["v1", "reports", "charges.csv"] => {
            (&["GET"], is(method, "GET").then_some(ReportChargesCsv))
        }
        ["v1", "subscriptions"] => (&["GET"], is(method, "GET").then_some(ListSubscriptions)),
        ["v1", "subscriptions", id] => (
            &["GET"],
            is(method, "GET").then(|| GetSubscription(owned(id))),
        ),
        ["v1", "subscriptions", id, "events"] => (
            &["GET"],
            is(method, "GET").then(|| ListSubscriptionEvents(owned(id))),
        ),
        ["v1", "subscriptions", id, "change-plan", "preview"] => (
            &["POST"],
            is(method, "POST").then(|| PreviewPlanChange(owned(id))),
        ),
        ["v1", "subscriptions", id, "discount"] => (
            &["POST", "DELETE"],
            match method {
                "POST" => Some(SetSubscriptionDiscount(owned(id))),
                "DELETE" => Some(DeleteSubscriptionDiscount(owned(id))),
                _ => None,
            },
        ),
        ["v1", "subscriptions", id, action] => {
            let action = match *action {
                "cancel" => Action::Cancel,
                "pause" => Action::Pause,
                "resume" => Action::Resume,
                "change-plan" => Action::ChangePlan,
                _ => return Matched::NotFound,
            };
            (
                &["POST"],
                is(method, "POST").then(|| SubscriptionAction(owned(id), action)),
            )
        }
        ["v1", "usage"] => (&["POST"], is(method, "POST").then_some(RecordUsage)),
        ["v1", "test-clocks"] => (
            &["GET", "POST"],
            match method {
                "GET" => Some(ListTestClocks),
                "POST" => Some(CreateTestClock),
                _ => None,
            },
        ),
        ["v1", "test-clocks", id] => (
            &["GET", "DELETE"],
            match method {
                "GET" => Some(GetTestClock(owned(id))),
                "DELETE" => Some(DeleteTestClock(owned(id))),
                _ => None,
            },
        ),
        ["v1", "test-clocks", id, "advance"] => (
            &["POST"],
            is(method, "POST").then(|| AdvanceTestClock(owned(id))),
        ),
        ["v1", "incidents"] => (&["GET"], is(method, "GET").then_some(ListIncidents)),
        ["v1", "monitoring"] => (&["GET"], is(method, "GET").then_some(Monitoring)),
        ["v1", "incidents", id] => (&["GET"], is(method, "GET").then(|| GetIncident(owned(id)))),
        ["v1", "events"] => (&["GET"], is(method, "GET").then_some(ListEvents)),
        ["v1", "events", id] => (&["GET"], is(method, "GET").then(|| GetEvent(owned(id)))),
        ["v1", "events", id, "redeliver"] => (
            &["POST"],
            is(method, "POST").then(|| RedeliverEvent(owned(id))),
        ),
        ["v1", "test-clock", "tick"] => (&["POST"], is(method, "POST").then_some(TestClockTick)),
        ["v1", "test-clock"] => (&["GET"], is(method, "GET").then_some(ReadTestClock)),
        _ => return Matched::NotFound,
    };
    match route {
        Some(route) => Matched::Route(route),
        // HEAD is answered like GET by the runtime's semantics; OPTIONS is handled before routing.
        None => Matched::MethodNotAllowed(allowed),
    }
}

fn is(method: &str, expected: &str) -> bool {
    method == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_routes_with_parameters() {
        assert_eq!(
            resolve("GET", "/v1/charges/ch_1"),
            Matched::Route(Route::GetCharge("ch_1".into()))
        );
        assert_eq!(
            resolve("POST", "/v1/subscriptions/sub_1/change-plan"),
            Matched::Route(Route::SubscriptionAction(
                "sub_1".into(),
                SubscriptionAction::ChangePlan
            ))
        );
        assert_eq!(
            resolve("DELETE", "/v1/customers/c-9/payment-method"),
            Matched::Route(Route::DeletePaymentMethod("c-9".into()))
        );
        assert_eq!(resolve("GET", "/health/"), Matched::Route(Route::Health));
    }

    #[test]
    fn every_listed_route_resolves_to_the_route_of_its_template() {
        let mut seen = std::collections::HashSet::new();
        for &(method, template) in ROUTES {
            assert!(seen.insert((method, template)), "{method} {template} twice");
            let path = sample_path(template);
            match resolve(method, &path) {
                Matched::Route(route) => assert_eq!(
                    route.template(),
                    (method, template),
                    "{method} {path} resolves to another route"
                ),
                other => panic!("{method} {path} does not resolve: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_method_is_405_with_the_allowed_list() {
        assert_eq!(
            resolve("POST", "/health"),
            Matched::MethodNotAllowed(&["GET"])
        );
        assert_eq!(
            resolve("PUT", "/v1/customers/c/payment-method"),
            Matched::MethodNotAllowed(&["GET", "DELETE"])
        );
        assert_eq!(
            resolve("GET", "/v1/charges"),
            Matched::MethodNotAllowed(&["POST"])
        );
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/",
            "/v1",
            "/v1/charges/ch_1/unknown",
            "/v1/subscriptions/s/explode",
            "/v1//charges",
            "/health/x",
        ] {
            assert_eq!(resolve("GET", path), Matched::NotFound, "{path}");
        }
    }

    #[test]
    fn money_routes_require_the_merchant_key() {
        for (method, path) in [
            ("POST", "/v1/charges"),
            ("POST", "/v1/charges/ch_1/refunds"),
            ("POST", "/v1/usage"),
            ("POST", "/v1/test-clock/tick"),
            ("DELETE", "/v1/customers/c/payment-method"),
            ("GET", "/v1/customers/c/charges"),
            ("GET", "/v1/incidents"),
            ("GET", "/v1/events"),
            ("POST", "/v1/events/evt_1/redeliver"),
            ("GET", "/v1/incidents/inc_1"),
            ("POST", "/v1/customer-sessions"),
        ] {
            let Matched::Route(route) = resolve(method, path) else {
                panic!("{path} should resolve")
            };
            assert_eq!(route.access(), Access::Merchant, "{method} {path}");
        }
    }

    #[test]
    fn customer_routes_take_the_customer_from_a_session() {
        for (method, path) in [
            ("POST", "/v1/checkout"),
            ("GET", "/v1/checkout/co_1"),
            ("GET", "/v1/customers/c/payment-method"),
            ("GET", "/v1/portal/subscriptions"),
            ("GET", "/v1/portal/charges"),
            ("POST", "/v1/portal/subscriptions/sub_1/cancel"),
            ("POST", "/v1/portal/subscriptions/sub_1/reactivate"),
            ("POST", "/v1/portal/payment-method"),
        ] {
            let Matched::Route(route) = resolve(method, path) else {
                panic!("{path} should resolve")
            };
            assert_eq!(route.access(), Access::Customer, "{method} {path}");
        }
        for (method, path) in [("GET", "/v1/plans"), ("POST", "/v1/demo/session")] {
            let Matched::Route(route) = resolve(method, path) else {
                panic!("{path} should resolve")
            };
            assert_eq!(route.access(), Access::Public, "{method} {path}");
        }
        assert_eq!(
            resolve("POST", "/v1/portal/subscriptions/sub_1/pause"),
            Matched::NotFound
        );
    }
}
