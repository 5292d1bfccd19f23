//! HTTP concerns that need no runtime: routing, problem details, CORS.

pub mod cors;
pub mod problem;
pub mod router;
