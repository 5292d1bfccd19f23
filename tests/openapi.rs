//! `openapi.json` against the code and the README, natively: it describes every route the
//! router resolves and no other, every problem type the code can answer, schemas that compile,
//! and the README shows one valid request and answer per operation. (The end-to-end tests check
//! every real answer against it: `tests/e2e/openapi.rs`.)

#[allow(dead_code)]
#[path = "e2e/openapi.rs"]
mod openapi;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use recurring_core::http::router::ROUTES;
use serde_json::Value;

use openapi::{document, token, validate_at};

/// Operations the static assets in front of the worker answer, not its router.
const ASSETS: &[(&str, &str)] = &[("GET", "/openapi.json")];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every operation of the document: (METHOD, template, its JSON Pointer).
fn operations() -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for (template, item) in document()["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                all.push((
                    method.to_ascii_uppercase(),
                    template.clone(),
                    format!("/paths/{}/{method}", token(template)),
                ));
            }
        }
    }
    all
}

#[test]
fn the_document_describes_every_route_and_no_other() {
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .chain(ASSETS)
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect();
    let documented: BTreeSet<(String, String)> =
        operations().into_iter().map(|(m, t, _)| (m, t)).collect();
    let mut errors = Vec::new();
    for (m, t) in routed.difference(&documented) {
        errors.push(format!(
            "the router has {m} {t}; describe it in openapi.json"
        ));
    }
    for (m, t) in documented.difference(&routed) {
        errors.push(format!(
            "openapi.json describes {m} {t}, which the router does not have"
        ));
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

#[test]
fn path_parameters_and_operation_ids_are_consistent() {
    let mut ids = HashSet::new();
    let mut errors = Vec::new();
    let mut check = |name: String, operation: &Value, template: Option<&str>| {
        match operation["operationId"].as_str() {
            Some(id) if ids.insert(id.to_owned()) => {}
            Some(id) => errors.push(format!("{name}: operationId {id} twice")),
            None => errors.push(format!("{name}: no operationId")),
        }
        if operation.get("security").is_none() {
            errors.push(format!(
                "{name}: say which security applies (`[]` for none)"
            ));
        }
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for scheme in requirement
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if document()["components"]["securitySchemes"]
                    .get(scheme)
                    .is_none()
                {
                    errors.push(format!("{name}: unknown security scheme {scheme}"));
                }
            }
        }
        let Some(template) = template else { return };
        let in_path: BTreeSet<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| match p.get("$ref").and_then(Value::as_str) {
                Some(r) => document().pointer(r.trim_start_matches('#')),
                None => Some(p),
            })
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        if in_path != declared {
            errors.push(format!(
                "{name}: path parameters {in_path:?}, declared {declared:?}"
            ));
        }
    };
    for (method, template, pointer) in operations() {
        let operation = document().pointer(&pointer).unwrap();
        check(format!("{method} {template}"), operation, Some(&template));
    }
    for (kind, item) in document()["webhooks"].as_object().expect("webhooks") {
        check(format!("webhook {kind}"), &item["post"], None);
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

/// Every JSON Schema in the document, by pointer: components, bodies, parameters, responses.
fn schema_pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{}", token(key));
                if key == "schema" || at == "/components/schemas" {
                    out.push(here.clone());
                }
                if key != "schema" && at != "/components/schemas" {
                    schema_pointers(child, &here, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                schema_pointers(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_compiles_and_every_ref_resolves() {
    let mut pointers = Vec::new();
    schema_pointers(document(), "", &mut pointers);
    assert!(
        pointers.len() > 100,
        "only {} schemas found",
        pointers.len()
    );
    let mut errors = Vec::new();
    for pointer in &pointers {
        // Compiling follows every `$ref` of the schema; the instance does not matter.
        if let Err(e) = validate_at(pointer, &Value::Null)
            && e.contains("does not compile")
        {
            errors.push(e);
        }
    }
    let text = openapi::TEXT;
    for (at, _) in text.match_indices("\"$ref\": \"#") {
        let target: String = text[at + 9..]
            .chars()
            .skip(1)
            .take_while(|c| *c != '"')
            .collect();
        if document().pointer(&target).is_none() {
            errors.push(format!("$ref #{target} points nowhere"));
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

/// The problem kinds the code can answer: the second argument of `Problem::new(status, "kind",
/// ...)` and the first of `Problem::conflict("kind", ...)`, wherever they are written.
fn problem_kinds_in(dir: &Path, found: &mut BTreeSet<(Option<u16>, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            problem_kinds_in(&path, found);
            continue;
        }
        // The dashboard answers its own pages, not the API the document describes.
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("api/dashboard.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (call, with_status) in [("Problem::new(", true), ("Problem::conflict(", false)] {
            for (at, _) in text.match_indices(call) {
                let mut rest = text[at + call.len()..].trim_start();
                let mut status = Some(409);
                if with_status {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    status = digits.parse().ok();
                    rest = rest[digits.len()..].trim_start();
                    let Some(after) = rest.strip_prefix(',') else {
                        continue;
                    };
                    rest = after.trim_start();
                }
                let Some(literal) = rest.strip_prefix('"') else {
                    continue;
                };
                let kind: String = literal.chars().take_while(|c| *c != '"').collect();
                found.insert((status, kind));
            }
        }
    }
}

#[test]
fn every_problem_type_the_code_answers_is_documented_with_its_status() {
    let mut found = BTreeSet::new();
    // The worker and the core (the problem details themselves are the core's).
    problem_kinds_in(&root().join("src"), &mut found);
    problem_kinds_in(&root().join("crates/core/src"), &mut found);
    let names: BTreeSet<&str> = found.iter().map(|(_, k)| k.as_str()).collect();
    for expected in [
        "not-found",
        "validation-error",
        "provider-refused",
        "too-many-open-checkouts",
    ] {
        assert!(
            names.contains(expected),
            "the scan misses {expected}: {names:?}"
        );
    }
    let documented: BTreeSet<String> = document()["components"]["schemas"]["ProblemType"]["enum"]
        .as_array()
        .expect("ProblemType enum")
        .iter()
        .map(|t| {
            t.as_str()
                .unwrap()
                .trim_start_matches("/problems/")
                .to_owned()
        })
        .collect();
    let mut errors = Vec::new();
    for kind in &names {
        if !documented.contains(*kind) {
            errors.push(format!(
                "the code answers /problems/{kind}; add it to ProblemType"
            ));
        }
    }
    for kind in &documented {
        if !names.contains(kind.as_str()) {
            errors.push(format!(
                "ProblemType lists /problems/{kind}, which no code answers"
            ));
        }
    }
    // Each kind is documented under the status the code gives it, on some operation.
    let text = openapi::TEXT;
    for (status, kind) in &found {
        let Some(status) = status else { continue };
        let listed = document()["components"]["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| name.starts_with(&format!("Problem{status}")))
            .any(|(_, r)| r.to_string().contains(&format!("\"/problems/{kind}\"")));
        if !listed && !text.contains(&format!("/problems/{kind}")) {
            errors.push(format!(
                "/problems/{kind} ({status}) is not a response of any operation"
            ));
        } else if !listed {
            errors.push(format!(
                "/problems/{kind} is never documented as a {status}"
            ));
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

// ---- the README's examples ---------------------------------------------------------------------

struct Example {
    method: String,
    template: String,
    status: u16,
    curl: String,
    answer: Option<String>,
    /// The README's text from the marker to the next one.
    section: String,
}

/// The first block opened by `fence` in `section`, without its fences.
fn readme_block(section: &str, fence: &str) -> Option<String> {
    section.find(fence).map(|start| {
        let body = &section[start + fence.len()..];
        body[..body.find("\n```").expect("block closes")]
            .trim()
            .to_owned()
    })
}

/// The README and every page under `docs/`, each with its text.
fn documentation() -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut paths = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Every `<!-- api: METHOD /template STATUS -->` of the documentation, with the `sh` block (the
/// curl request) and the `json` block (the answer) that follow it on the same page.
fn readme_examples() -> Vec<Example> {
    let mut examples = Vec::new();
    for (_, page) in documentation() {
        examples.extend(page_examples(&page));
    }
    examples
}

fn page_examples(readme: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    for (at, _) in readme.match_indices("<!-- api: ") {
        let rest = &readme[at + 10..];
        let head = &rest[..rest.find("-->").expect("marker closes")];
        let parts: Vec<&str> = head.split_whitespace().collect();
        let [method, template, status] = parts[..] else {
            panic!("bad marker <!-- api: {head}-->");
        };
        let next_marker = rest.find("<!-- api: ").unwrap_or(rest.len());
        let section = &rest[..next_marker];
        let block = |fence: &str| readme_block(section, fence);
        examples.push(Example {
            method: method.to_owned(),
            template: template.to_owned(),
            status: status.parse().expect("status"),
            curl: block("```sh\n").unwrap_or_else(|| panic!("{head}: no ```sh block")),
            answer: block("```json\n"),
            section: section.to_owned(),
        });
    }
    examples
}

/// The path (and query) the curl calls: on the README's deployment, or `make dev`'s.
fn curl_target(curl: &str) -> Option<String> {
    ["https://payments.myshop.se", "http://127.0.0.1:8787"]
        .iter()
        .find_map(|base| {
            let start = curl.find(base)? + base.len();
            Some(
                curl[start..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
                    .collect(),
            )
        })
}

fn curl_body(curl: &str) -> Option<&str> {
    let start = curl.find("-d '")? + 4;
    let end = curl[start..].find('\'')?;
    Some(&curl[start..start + end])
}

#[test]
fn the_readme_shows_a_valid_request_and_answer_for_every_operation() {
    let examples = readme_examples();
    let mut errors = Vec::new();
    let mut shown = HashSet::new();
    for e in &examples {
        let name = format!("README {} {} {}", e.method, e.template, e.status);
        let pointer = format!(
            "/paths/{}/{}",
            token(&e.template),
            e.method.to_ascii_lowercase()
        );
        let Some(operation) = document().pointer(&pointer) else {
            errors.push(format!("{name}: no such operation"));
            continue;
        };
        shown.insert((e.method.clone(), e.template.clone()));
        // The request: method, path, credentials, idempotency key, body.
        let method = match (e.curl.find("-X "), curl_body(&e.curl)) {
            (Some(at), _) => e.curl[at + 3..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned(),
            (None, Some(_)) => "POST".to_owned(),
            (None, None) => "GET".to_owned(),
        };
        if method != e.method {
            errors.push(format!("{name}: the curl sends {method}"));
        }
        match curl_target(&e.curl) {
            Some(path) if openapi::fits(&e.template, &path) => {}
            other => errors.push(format!("{name}: the curl calls {other:?}")),
        }
        let schemes: Vec<&str> = operation["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|r| r.keys().map(String::as_str))
            .collect();
        let proof = |scheme: &str| match scheme {
            "providerSignature" => "x-webhook-signature: ",
            _ => "Authorization: Bearer ",
        };
        if schemes.iter().any(|s| !e.curl.contains(proof(s)))
            || (schemes.is_empty() && e.curl.contains("Authorization"))
        {
            errors.push(format!(
                "{name}: credentials unlike the security {schemes:?}"
            ));
        }
        let key_required = operation
            .to_string()
            .contains("parameters/IdempotencyKeyRequired");
        if key_required && !e.curl.contains("Idempotency-Key: ") {
            errors.push(format!("{name}: the route requires an Idempotency-Key"));
        }
        match (curl_body(&e.curl), operation.get("requestBody")) {
            (Some(body), Some(_)) => {
                if !e.curl.contains("Content-Type: application/json") {
                    errors.push(format!(
                        "{name}: a body without `Content-Type: application/json`"
                    ));
                }
                match serde_json::from_str::<Value>(body) {
                    Ok(v) => {
                        let at = format!("{pointer}/requestBody/content/application~1json/schema");
                        if let Err(err) = validate_at(&at, &v) {
                            errors.push(format!("{name}: the request body: {err}"));
                        }
                    }
                    Err(err) => errors.push(format!("{name}: the request body is not JSON: {err}")),
                }
            }
            (Some(_), None) => {
                errors.push(format!("{name}: a body for an operation that takes none"))
            }
            (None, Some(b)) if b["required"] == true => {
                errors.push(format!("{name}: the operation requires a body"))
            }
            (None, _) => {}
        }
        // The answer.
        let Some((response, at)) = openapi::resolve(&format!("{pointer}/responses/{}", e.status))
        else {
            errors.push(format!(
                "{name}: the operation does not answer {}",
                e.status
            ));
            continue;
        };
        let media = response["content"]
            .as_object()
            .and_then(|c| c.keys().next().cloned());
        match (&e.answer, media) {
            // A text answer (the CSV export) is shown in a ```csv block: its header row must be
            // the columns the operation documents.
            (_, Some(media)) if media.starts_with("text/") => {
                let csv = readme_block(&e.section, "```csv\n");
                let documented = operation["description"].as_str().unwrap_or_default();
                match csv.as_deref().and_then(|c| c.lines().next()) {
                    Some(header) if documented.contains(&header.replace(',', ", ")) => {}
                    other => errors.push(format!(
                        "{name}: the ```csv answer's header {other:?} is not the documented columns"
                    )),
                }
            }
            (Some(answer), Some(media)) => match serde_json::from_str::<Value>(answer) {
                Ok(v) => {
                    let at = format!("{at}/content/{}/schema", token(&media));
                    if let Err(err) = validate_at(&at, &v) {
                        errors.push(format!("{name}: the answer: {err}"));
                    }
                }
                Err(err) => errors.push(format!("{name}: the answer is not JSON: {err}")),
            },
            (None, None) => {}
            (Some(_), None) => errors.push(format!("{name}: an answer body where there is none")),
            (None, Some(_)) => errors.push(format!("{name}: no ```json answer")),
        }
    }
    let pages = documentation();
    for (at, readme) in pages.iter().flat_map(|(_, page)| {
        page.match_indices("<!-- problem -->")
            .map(move |(at, _)| (at, page.as_str()))
    }) {
        let rest = &readme[at..];
        let body = rest
            .split("```json\n")
            .nth(1)
            .and_then(|b| b.split("\n```").next());
        match body.map(serde_json::from_str::<Value>) {
            Some(Ok(v)) => {
                if let Err(err) = validate_at("/components/schemas/Problem", &v) {
                    errors.push(format!("README problem example: {err}"));
                }
            }
            other => errors.push(format!("README problem example: {other:?}")),
        }
    }
    for (method, template, _) in operations() {
        if !shown.contains(&(method.clone(), template.clone())) {
            errors.push(format!(
                "the documentation shows no example of {method} {template}"
            ));
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

// ---- events ------------------------------------------------------------------------------------

/// The README's answer for an operation, as a sample of its resource.
fn sample(method: &str, template: &str) -> Value {
    let e = readme_examples()
        .into_iter()
        .find(|e| e.method == method && e.template == template && e.answer.is_some())
        .unwrap_or_else(|| panic!("no documented answer for {method} {template}"));
    serde_json::from_str(e.answer.as_deref().unwrap()).unwrap()
}

#[test]
fn every_event_type_has_a_webhook_and_its_resource_as_data() {
    let data_of = [
        ("checkout.", sample("GET", "/v1/checkout/{checkoutId}")),
        (
            "payment_method.",
            sample("GET", "/v1/customers/{customerRef}/payment-method"),
        ),
        ("charge.", sample("GET", "/v1/charges/{chargeId}")),
        ("refund.", sample("GET", "/v1/refunds/{refundId}")),
        (
            "subscription.",
            sample("GET", "/v1/subscriptions/{subscriptionId}"),
        ),
    ];
    let types = document()["components"]["schemas"]["EventType"]["enum"]
        .as_array()
        .expect("EventType enum");
    let hooks = document()["webhooks"].as_object().expect("webhooks");
    assert_eq!(types.len(), hooks.len(), "one webhook entry per event type");
    for kind in types {
        let kind = kind.as_str().unwrap();
        let data = &data_of
            .iter()
            .find(|(prefix, _)| kind.starts_with(prefix))
            .unwrap_or_else(|| panic!("{kind}: which resource?"))
            .1;
        let event = serde_json::json!({
            "id": "evt_01", "type": kind, "createdAt": "2026-01-31T00:00:05Z", "data": data,
        });
        openapi::validate_event(&event);
        // The same event with another resource, or an unknown member, is refused.
        let other = &data_of
            .iter()
            .find(|(p, _)| !kind.starts_with(p))
            .unwrap()
            .1;
        let mut wrong = event.clone();
        wrong["data"] = other.clone();
        assert!(openapi::check_event(&wrong).is_err(), "{kind} with {other}");
        let mut extra = event.clone();
        extra["livemode"] = Value::Bool(true);
        assert!(
            openapi::check_event(&extra).is_err(),
            "{kind} with an extra member"
        );
    }
    let mut unknown = serde_json::json!({
        "id": "evt_01", "type": "charge.exploded", "createdAt": "2026-01-31T00:00:05Z",
        "data": data_of[2].1,
    });
    assert!(openapi::check_event(&unknown).is_err());
    unknown["type"] = "charge.succeeded".into();
    openapi::validate_delivery(
        &[
            ("webhook-id".into(), "evt_01".into()),
            ("webhook-timestamp".into(), "1769817605".into()),
            (
                "webhook-signature".into(),
                "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=".into(),
            ),
        ],
        &unknown.to_string(),
    );
}

#[test]
fn every_deployment_serves_this_document() {
    // The development and the production assets both link to the one document.
    for dir in ["public", "production-assets"] {
        let served = std::fs::read_to_string(root().join(dir).join("openapi.json"))
            .unwrap_or_else(|e| panic!("{dir}/openapi.json: {e}"));
        assert!(
            served == openapi::TEXT,
            "{dir}/openapi.json is not the document"
        );
    }
    assert_eq!(document()["openapi"], "3.1.0");
    assert_eq!(
        document()["info"]["version"],
        env!("CARGO_PKG_VERSION"),
        "the document's version is the crate's"
    );
}

// ---- the API reference page -------------------------------------------------------------------

/// `docs/reference/api.md` as `openapi.json` makes it: every operation by tag, with its caller
/// and its answers.
fn api_reference() -> String {
    let doc = document();
    let mut out = String::from(
        "# API reference\n\n\
         Every route, generated from [`openapi.json`](../../openapi.json) (which has the \
         parameters, bodies and schemas). `tests/openapi.rs` fails when this page differs from \
         the document; `UPDATE_DOCS=1 cargo test --test openapi` writes it again.\n\n\
         Callers: **merchant** is `Authorization: Bearer <MERCHANT_API_KEY>` (or the read key, \
         on routes marked *read key*), **customer** a customer session, **provider** the \
         provider's signature, **none** no proof.\n",
    );
    let tags: Vec<String> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    for tag in tags {
        let mut rows = Vec::new();
        for (method, template, pointer) in operations() {
            let op = doc.pointer(&pointer).unwrap();
            let tagged = op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == tag.as_str()));
            if !tagged {
                continue;
            }
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|s| s.as_object()?.keys().next().map(String::as_str))
                        .collect()
                })
                .unwrap_or_default();
            let caller = match schemes.as_slice() {
                [] => "none".to_owned(),
                s if s.contains(&"merchantReadKey") => "merchant (read key)".to_owned(),
                s if s.contains(&"merchantKey") => "merchant".to_owned(),
                s if s.contains(&"customerSession") => "customer".to_owned(),
                s if s.contains(&"providerSignature") => "provider".to_owned(),
                s => s.join(", "),
            };
            let statuses: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            rows.push(format!(
                "| `{method} {template}` | {} | {caller} | {} |\n",
                op["summary"].as_str().unwrap_or(""),
                statuses.join(", ")
            ));
        }
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n## {tag}\n\n| route | what | caller | answers |\n|---|---|---|---|\n"
        ));
        for row in rows {
            out.push_str(&row);
        }
    }
    out
}

#[test]
fn the_api_reference_page_is_generated_from_the_document() {
    let path = root().join("docs/reference/api.md");
    let expected = api_reference();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "docs/reference/api.md is not what openapi.json makes; run \
         `UPDATE_DOCS=1 cargo test --test openapi`"
    );
}
