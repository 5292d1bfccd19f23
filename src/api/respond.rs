//! Building responses. Every answer is JSON (or problem+json) and never cached: they describe
//! money and change from one second to the next.

use serde::Serialize;
use worker::{Headers, Response};

use recurring_core::http::problem::{self, Problem};

pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response, Problem> {
    let text = serde_json::to_string(body)
        .map_err(|_| Problem::internal("The response could not be encoded."))?;
    json_text(status, text)
}

/// `{"data": [...]}`: a list that is not paged.
pub fn data<T: Serialize>(status: u16, items: &[T]) -> Result<Response, Problem> {
    #[derive(Serialize)]
    struct Data<'a, T> {
        data: &'a [T],
    }
    json(status, &Data { data: items })
}

/// A body that is JSON text already.
pub fn json_text(status: u16, text: String) -> Result<Response, Problem> {
    build(status, "application/json", text, &[])
}

pub fn problem(p: &Problem) -> Response {
    build(p.status, problem::CONTENT_TYPE, p.body(), &p.headers).unwrap_or_else(|_| {
        Response::error("Internal error", 500).expect("a plain error response can be built")
    })
}

pub fn empty(status: u16, headers: Vec<(&'static str, String)>) -> Result<Response, Problem> {
    let response = Response::empty()
        .map_err(|_| Problem::internal("The response could not be built."))?
        .with_status(status);
    Ok(response.with_headers(header_map(&headers)))
}

fn build(
    status: u16,
    content_type: &str,
    body: String,
    extra: &[(&'static str, String)],
) -> Result<Response, Problem> {
    let mut headers = vec![
        ("Content-Type", content_type.to_owned()),
        ("Cache-Control", "no-store".to_owned()),
        ("X-Content-Type-Options", "nosniff".to_owned()),
    ];
    headers.extend(extra.iter().cloned());
    let response = Response::ok(body)
        .map_err(|_| Problem::internal("The response could not be built."))?
        .with_status(status)
        .with_headers(header_map(&headers));
    Ok(response)
}

fn header_map(pairs: &[(&'static str, String)]) -> Headers {
    let headers = Headers::new();
    for (name, value) in pairs {
        let _ = headers.set(name, value);
    }
    headers
}
