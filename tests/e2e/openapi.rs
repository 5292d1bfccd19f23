//! The API description, `openapi.json`, as the tests' referee: every answer the worker gives a
//! test (through [`crate::http::Client`]) is checked against it, and so is every event delivered
//! to a merchant ([`validate_event`], [`validate_delivery`]). An answer the document does not
//! describe fails the test that received it, naming the route, the status, what is wrong and the
//! body, so the document cannot drift from the code unnoticed.
//!
//! The document's JSON Schemas (dialect 2020-12) are compiled with `boon`, straight from the
//! document: `$ref`s to `#/components/...` resolve inside it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use boon::{Compiler, Draft, SchemaIndex, Schemas};
use recurring_core::http::router::{self, Matched};
use serde_json::Value;

/// The document as the worker serves it (the same file, built into both).
pub const TEXT: &str = include_str!("../../openapi.json");
/// Where the document is registered for `boon`; `$ref`s resolve against it.
const BASE: &str = "urn:recurring-edge:openapi";

pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::from_str(TEXT).expect("openapi.json is JSON"))
}

struct Compiled {
    compiler: Compiler,
    schemas: Schemas,
    by_pointer: HashMap<String, SchemaIndex>,
}

thread_local! {
    // boon's compiler is not Send; each test thread compiles what it validates against, once.
    static COMPILED: RefCell<Option<Compiled>> = const { RefCell::new(None) };
}

/// Escapes one JSON Pointer token (RFC 6901).
pub fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Validates `instance` against the schema at `pointer` in the document (e.g.
/// `/components/schemas/Charge`). The error lists every violation with its location.
pub fn validate_at(pointer: &str, instance: &Value) -> Result<(), String> {
    COMPILED.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compiled = cell.get_or_insert_with(|| {
            let mut compiler = Compiler::new();
            compiler.set_default_draft(Draft::V2020_12);
            compiler.enable_format_assertions();
            compiler
                .add_resource(BASE, document().clone())
                .expect("openapi.json registers");
            Compiled {
                compiler,
                schemas: Schemas::new(),
                by_pointer: HashMap::new(),
            }
        });
        let index = match compiled.by_pointer.get(pointer) {
            Some(index) => *index,
            None => {
                let index = compiled
                    .compiler
                    .compile(&format!("{BASE}#{pointer}"), &mut compiled.schemas)
                    .map_err(|e| format!("the schema at {pointer} does not compile: {e:#}"))?;
                compiled.by_pointer.insert(pointer.to_owned(), index);
                index
            }
        };
        compiled
            .schemas
            .validate(instance, index)
            .map_err(|e| format!("{e}"))
    })
}

/// The value at `pointer`, following a `$ref` to `#/components/...` if that is what is there;
/// returns the value and the pointer it was found at.
pub fn resolve(pointer: &str) -> Option<(&'static Value, String)> {
    let value = document().pointer(pointer)?;
    match value.get("$ref").and_then(Value::as_str) {
        Some(target) => {
            let target = target.strip_prefix('#')?;
            Some((document().pointer(target)?, target.to_owned()))
        }
        None => Some((value, pointer.to_owned())),
    }
}

/// Whether a concrete path fits a template of the document (`{name}` is one segment).
pub fn fits(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// Checks one answer of the worker against the document. `path` may carry a query string.
pub fn check_answer(
    method: &str,
    path: &str,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let media = header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let bare = path.split('?').next().unwrap_or(path);
    // The dashboard's pages and calls are for its own pages, not the API the document describes.
    if method == "HEAD" || bare == "/dashboard" || bare.starts_with("/dashboard/") {
        return Ok(());
    }
    if method == "OPTIONS" {
        // CORS preflights are not operations: an empty 204, or a problem.
        return match media.as_str() {
            "application/problem+json" => validate_body("/components/schemas/Problem", body),
            _ if status == 204 && body.is_empty() => Ok(()),
            _ => Err(format!("a preflight answered {status} {media}")),
        };
    }
    match router::resolve(method, bare) {
        Matched::Route(route) => {
            let (m, template) = route.template();
            let pointer = format!("/paths/{}/{}", token(template), m.to_ascii_lowercase());
            if document().pointer(&pointer).is_none() {
                return Err(format!(
                    "the router has {m} {template}, but openapi.json does not describe it"
                ));
            }
            if !fits(template, bare) {
                return Err(format!("{bare} does not fit the template {template}"));
            }
            note_coverage(m, template, status);
            check_operation(&pointer, status, &media, header, body)
                .map_err(|e| format!("{m} {template}: {e}"))
        }
        // Answers outside any operation have their own entries in `components/responses`.
        Matched::MethodNotAllowed(allowed) => {
            let allow = allowed.join(", ");
            if status != 405 || header("allow") != Some(allow.as_str()) {
                return Err(format!(
                    "{method} on {bare} should be a 405 with `Allow: {allow}`, was {status}"
                ));
            }
            check_response(
                "/components/responses/Problem405MethodNotAllowed",
                status,
                &media,
                header,
                body,
            )
        }
        // The worker's static assets and wrangler's own pages are not the API.
        Matched::NotFound if media != "application/problem+json" => Ok(()),
        Matched::NotFound => check_response(
            "/components/responses/Problem404NotFound",
            status,
            &media,
            header,
            body,
        )
        .map_err(|e| format!("{bare} is no route: {e}")),
    }
}

/// With `OPENAPI_COVERAGE=<file>`, each checked answer appends `METHOD template status` there:
/// which documented answers the suite exercises (`sort -u` the file).
fn note_coverage(method: &str, template: &str, status: u16) {
    use std::io::Write;
    if let Some(path) = std::env::var_os("OPENAPI_COVERAGE")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{method} {template} {status}");
    }
}

fn check_operation<'h>(
    operation: &str,
    status: u16,
    media: &str,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &str,
) -> Result<(), String> {
    let responses = document()
        .pointer(&format!("{operation}/responses"))
        .and_then(Value::as_object)
        .ok_or("no responses")?;
    let key = [
        status.to_string(),
        format!("{}XX", status / 100),
        "default".into(),
    ]
    .into_iter()
    .find(|k| responses.contains_key(k))
    .ok_or_else(|| {
        let listed: Vec<&String> = responses.keys().collect();
        format!("answered {status}, which it does not list (it lists {listed:?})")
    })?;
    check_response(
        &format!("{operation}/responses/{key}"),
        status,
        media,
        header,
        body,
    )
}

/// Checks an answer against one response object (its headers, media type and schema).
fn check_response<'h>(
    pointer: &str,
    status: u16,
    media: &str,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &str,
) -> Result<(), String> {
    let (response, at) = resolve(pointer).ok_or_else(|| format!("{pointer} is missing"))?;
    let expected = pointer.rsplit('/').next().unwrap_or_default();
    if expected.starts_with("Problem") && !expected.starts_with(&format!("Problem{status}")) {
        return Err(format!("answered {status}, where {expected} was expected"));
    }
    for (name, spec) in response
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let spec = match spec.get("$ref").and_then(Value::as_str) {
            Some(r) => document()
                .pointer(r.trim_start_matches('#'))
                .ok_or("bad $ref")?,
            None => spec,
        };
        if spec["required"] == true && header(name).is_none() {
            return Err(format!("answered {status} without the `{name}` header"));
        }
    }
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return if body.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "answered {status} with a body, where it lists none"
            ))
        };
    };
    if !content.contains_key(media) {
        let listed: Vec<&String> = content.keys().collect();
        return Err(format!(
            "answered {status} as `{media}`, where it lists {listed:?}"
        ));
    }
    // Text (the CSV export) is described, not schema-checked: its tests read it back.
    if media.starts_with("text/") {
        return Ok(());
    }
    validate_body(&format!("{at}/content/{}/schema", token(media)), body)
        .map_err(|e| format!("answered {status}: {e}"))
}

fn validate_body(pointer: &str, body: &str) -> Result<(), String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("the body is not JSON ({e})"))?;
    validate_at(pointer, &value)
}

/// Checks an event (the body of a delivery, or an item of `GET /v1/events`) against the
/// document: the `Event` schema, and the `webhooks` entry of its type.
pub fn check_event(event: &Value) -> Result<(), String> {
    validate_at("/components/schemas/Event", event)?;
    let kind = event["type"].as_str().unwrap_or_default();
    let pointer = format!(
        "/webhooks/{}/post/requestBody/content/application~1json/schema",
        token(kind)
    );
    if document().pointer(&pointer).is_none() {
        return Err(format!("no webhook entry for the event type {kind:?}"));
    }
    validate_at(&pointer, event)
}

/// Fails the calling test when `event` does not match the document.
pub fn validate_event(event: &Value) {
    if let Err(e) = check_event(event) {
        panic!("an event does not match openapi.json:\n{e}\nevent: {event:#}");
    }
}

/// Fails the calling test when a delivery to the merchant's webhook URL does not match the
/// document: the Standard Webhooks headers (`webhook-id` is the event's id) and the event.
pub fn validate_delivery(headers: &[(String, String)], body: &str) {
    let result = (|| {
        let event: Value =
            serde_json::from_str(body).map_err(|e| format!("the body is not JSON ({e})"))?;
        for name in ["WebhookId", "WebhookTimestamp", "WebhookSignature"] {
            let spec = &document()["components"]["parameters"][name];
            let header = spec["name"].as_str().unwrap_or_default();
            let value = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(header))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("no `{header}` header"))?;
            validate_at(
                &format!("/components/parameters/{name}/schema"),
                &Value::String(value.clone()),
            )
            .map_err(|e| format!("`{header}`: {e}"))?;
            if header == "webhook-id" && event["id"] != value.as_str() {
                return Err(format!("`webhook-id` {value} is not the event's id"));
            }
        }
        check_event(&event)
    })();
    if let Err(e) = result {
        panic!("a delivery does not match openapi.json:\n{e}\nbody: {body}");
    }
}
