//! The Cloudflare Access team's signing keys, read from its published key set and kept for a
//! while, and RS256 signatures checked with the platform's WebCrypto: the wasm carries no RSA.

use std::cell::RefCell;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Fetch, Headers};

use recurring_core::config::AccessApp;
use recurring_core::staff::{AccessToken, Refusal};

/// A key set is read again after this long, and at most this often when a token names a key it
/// does not hold (Access rotates its keys every few weeks, publishing the next one first).
const KEEP_MS: f64 = 10.0 * 60_000.0;
const REFETCH_MS: f64 = 60_000.0;

struct KeySet {
    url: String,
    fetched_at: f64,
    /// `(kid, the JWK as the set publishes it)`.
    keys: Vec<(String, JsValue)>,
}

thread_local! {
    // One isolate serves many requests: the key set is fetched once for all of them.
    static KEYS: RefCell<Option<KeySet>> = const { RefCell::new(None) };
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn cached(url: &str, kid: &str, max_age: f64) -> Option<JsValue> {
    KEYS.with(|cell| {
        let cell = cell.borrow();
        let set = cell.as_ref().filter(|s| s.url == url)?;
        if now_ms() - set.fetched_at > max_age {
            return None;
        }
        set.keys
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, jwk)| jwk.clone())
    })
}

fn fetched_recently(url: &str) -> bool {
    KEYS.with(|cell| {
        cell.borrow()
            .as_ref()
            .is_some_and(|s| s.url == url && now_ms() - s.fetched_at < REFETCH_MS)
    })
}

async fn fetch_set(url: &str) -> Option<Vec<(String, JsValue)>> {
    let headers = Headers::new();
    headers.set("Accept", "application/json").ok()?;
    let request = crate::outbound::request("GET", url, Some(&headers), None)?;
    let mut response = Fetch::Request(request).send().await.ok()?;
    if response.status_code() != 200 {
        return None;
    }
    let text = response.text().await.ok()?;
    let set = js_sys::JSON::parse(&text).ok()?;
    let keys = Reflect::get(&set, &"keys".into()).ok()?;
    let keys: js_sys::Array = keys.dyn_into().ok()?;
    Some(
        keys.iter()
            .filter_map(|jwk| {
                let kid = Reflect::get(&jwk, &"kid".into()).ok()?.as_string()?;
                let kty = Reflect::get(&jwk, &"kty".into()).ok()?.as_string()?;
                (kty == "RSA").then_some((kid, jwk))
            })
            .collect(),
    )
}

async fn key_for(app: &AccessApp, kid: &str) -> Option<JsValue> {
    let url = app.certs_url();
    if let Some(jwk) = cached(&url, kid, KEEP_MS) {
        return Some(jwk);
    }
    if !fetched_recently(&url)
        && let Some(keys) = fetch_set(&url).await
    {
        KEYS.with(|cell| {
            *cell.borrow_mut() = Some(KeySet {
                url: url.clone(),
                fetched_at: now_ms(),
                keys,
            })
        });
    }
    cached(&url, kid, f64::MAX)
}

fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Option<js_sys::Promise> {
    let f: js_sys::Function = Reflect::get(target, &method.into()).ok()?.dyn_into().ok()?;
    let args: js_sys::Array = args.iter().collect();
    f.apply(target, &args).ok()?.dyn_into().ok()
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `signed`, with the public key `jwk`.
async fn rs256(jwk: &JsValue, signed: &[u8], signature: &[u8]) -> Option<bool> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).ok()?;
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"RSASSA-PKCS1-v1_5".into()).ok()?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into()).ok()?;
    // Only the members a public RSA key needs: a set may carry others WebCrypto refuses.
    let public = Object::new();
    for member in ["kty", "n", "e"] {
        Reflect::set(
            &public,
            &member.into(),
            &Reflect::get(jwk, &member.into()).ok()?,
        )
        .ok()?;
    }
    let usages: js_sys::Array = std::iter::once(JsValue::from_str("verify")).collect();
    let key = JsFuture::from(call(
        &subtle,
        "importKey",
        &[
            "jwk".into(),
            public.into(),
            algorithm.clone().into(),
            false.into(),
            usages.into(),
        ],
    )?)
    .await
    .ok()?;
    let verified = JsFuture::from(call(
        &subtle,
        "verify",
        &[
            algorithm.into(),
            key,
            Uint8Array::from(signature).into(),
            Uint8Array::from(signed).into(),
        ],
    )?)
    .await
    .ok()?;
    verified.as_bool()
}

/// Whether one of the team's keys signed the token.
pub async fn verify(app: &AccessApp, token: &AccessToken) -> Result<(), Refusal> {
    let jwk = key_for(app, &token.kid).await.ok_or(Refusal::Signature)?;
    match rs256(&jwk, token.signed.as_bytes(), &token.signature).await {
        Some(true) => Ok(()),
        _ => Err(Refusal::Signature),
    }
}
