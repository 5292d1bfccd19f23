//! `GET /v1/plans`: the catalog, for the storefront to render (prices are display-only there;
//! a checkout names a plan and the server prices it).

use worker::Response;

use super::respond;
use crate::context::Ctx;
use crate::http::problem::Problem;

pub fn list(ctx: &Ctx) -> Result<Response, Problem> {
    respond::json(
        200,
        &serde_json::json!({ "plans": ctx.config.catalog.plans }),
    )
}
