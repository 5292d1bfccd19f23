//! `GET /v1/plans`: the catalog, for the storefront to render (prices are display-only there;
//! a checkout names a plan and the server prices it).

use worker::Response;

use super::respond;
use crate::context::Ctx;
use recurring_core::http::problem::Problem;

pub fn list(ctx: &Ctx) -> Result<Response, Problem> {
    #[derive(serde::Serialize)]
    struct Plans<'a> {
        plans: &'a [recurring_core::catalog::Plan],
    }
    respond::json(
        200,
        &Plans {
            plans: &ctx.config.catalog.plans,
        },
    )
}
