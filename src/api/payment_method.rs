//! `GET /v1/customers/:ref/payment-method` (masked card only, for the customer of the session)
//! and `DELETE` (forget the card, the merchant's call). The provider cannot delete tokens, so
//! forgetting a card means deleting our only copy.

use worker::Response;

use super::respond;
use crate::context::Ctx;
use crate::store::payment_methods;
use crate::views;
use recurring_core::http::problem::Problem;
use recurring_core::session::Claims;
use recurring_core::validate;

/// Another customer's card, an unknown customer and a customer without a card all answer the
/// same 404: the route tells nobody which references exist or have a card.
pub async fn get(ctx: &Ctx, session: &Claims, customer: &str) -> Result<Response, Problem> {
    let no_card = || Problem::not_found("A card on file for this customer");
    if customer != session.customer_ref {
        return Err(no_card());
    }
    let (card, created_at) = payment_methods::active(ctx.db(), customer)
        .await?
        .ok_or_else(no_card)?;
    respond::json(200, &views::payment_method(customer, &card, created_at))
}

pub async fn delete(ctx: &Ctx, customer: &str) -> Result<Response, Problem> {
    if !validate::is_identifier(customer) {
        return Err(Problem::not_found("The customer"));
    }
    let now = ctx.now().await?;
    ctx.vault().delete(customer).await?;
    payment_methods::mark_removed(ctx.db(), customer, now).await?;
    respond::empty(204, Vec::new())
}
