//! Resources as the API shows them: in responses and, rendered from the row as it was at the
//! change, in the events sent to the merchant. One function per resource, so that an event's
//! `data` is exactly what the API returns for the resource.

pub mod charge;
pub mod checkout;
pub mod event;
pub mod payment_method;
pub mod refund;
pub mod subscription;

pub use charge::charge;
pub use checkout::checkout;
pub use event::event;
pub use payment_method::payment_method;
pub use refund::refund;
pub use subscription::subscription;
