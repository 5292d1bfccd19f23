//! Requests the worker sends: to the provider, to the merchant's webhook endpoint, and the
//! health probe.

use wasm_bindgen::JsValue;
use worker::{Headers, Request};

/// A request with a method, headers and an optional text body, and nothing else: no `cf`
/// options, the platform's defaults for redirects and caching. Built on the platform's
/// `RequestInit` directly, because worker's own builder carries the conversion of every `cf`
/// option into the wasm even when none is set.
pub fn request(
    method: &str,
    url: &str,
    headers: Option<&Headers>,
    body: Option<&str>,
) -> Option<Request> {
    let init = worker::web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(headers) = headers {
        init.set_headers(&headers.0);
    }
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
    }
    worker::web_sys::Request::new_with_str_and_init(url, &init)
        .ok()
        .map(Request::from)
}
