//! A small blocking HTTP client for the tests: every status is a value to assert on. The
//! worker's client checks every answer against `openapi.json` (see `openapi.rs`) before the test
//! sees it, so no test needs to remember to.

use std::time::Duration;

use serde_json::Value;

use super::openapi;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts an RFC 9457 problem with this status and type slug, and returns it.
    pub fn problem(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "content type {} for {}",
            self.content_type,
            self.text
        );
        let v = self.json();
        assert_eq!(v["type"], format!("/problems/{kind}"), "{}", self.text);
        assert_eq!(v["status"], status);
        v
    }
}

#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    /// Check every answer against the API description (the worker's answers, not the sandbox's).
    checked: bool,
}

pub type Headers<'a> = &'a [(&'a str, &'a str)];

impl Client {
    /// A client of the worker: an answer that `openapi.json` does not describe fails the test.
    pub fn new(base: String) -> Client {
        Client {
            checked: true,
            ..Client::unchecked(base)
        }
    }

    /// A client of another server (the sandbox), whose answers are not the API's.
    pub fn unchecked(base: String) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_redirects(0)
            .build()
            .into();
        Client {
            base,
            agent,
            checked: false,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET whose transport failure is a value (the readiness probe). Only the worker's own
    /// answers are checked: while it starts, wrangler may answer for it.
    pub fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        let reply = read(self.agent.get(&self.url(path)).call()?);
        if reply.content_type.contains("json") {
            self.check("GET", path, &reply);
        }
        Ok(reply)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: Headers<'_>) -> Reply {
        let mut req = self.agent.get(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let reply = read(req.call().unwrap_or_else(|e| panic!("GET {path}: {e}")));
        self.check("GET", path, &reply);
        reply
    }

    /// A GET with headers whose transport failure (a timeout on a flooded machine) is a value:
    /// the bench's merchant poll (examples/bench.rs shares this file).
    #[allow(dead_code)]
    pub fn try_get_with(&self, path: &str, headers: Headers<'_>) -> Result<Reply, ureq::Error> {
        let mut req = self.agent.get(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let reply = read(req.call()?);
        self.check("GET", path, &reply);
        Ok(reply)
    }

    pub fn delete_with(&self, path: &str, headers: Headers<'_>) -> Reply {
        let mut req = self.agent.delete(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let reply = read(req.call().unwrap_or_else(|e| panic!("DELETE {path}: {e}")));
        self.check("DELETE", path, &reply);
        reply
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(
            path,
            &body.to_string(),
            &[("Content-Type", "application/json")],
        )
    }

    pub fn post_with(&self, path: &str, body: &Value, headers: Headers<'_>) -> Reply {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        self.post_raw(path, &body.to_string(), &all)
    }

    pub fn post_raw(&self, path: &str, body: &str, headers: Headers<'_>) -> Reply {
        self.send("POST", path, body, headers)
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(
            "PUT",
            path,
            &body.to_string(),
            &[("Content-Type", "application/json")],
        )
    }

    /// A JSON POST whose transport failure is a value (the server may die mid-request).
    pub fn agent_post(
        &self,
        path: &str,
        body: &Value,
        headers: Headers<'_>,
    ) -> Result<Reply, ureq::Error> {
        let mut req = ureq::http::Request::builder()
            .method("POST")
            .uri(self.url(path))
            .header("Content-Type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.to_string()).expect("request builds");
        let reply = self.agent.run(req).map(read)?;
        self.check("POST", path, &reply);
        Ok(reply)
    }

    pub fn send(&self, method: &str, path: &str, body: &str, headers: Headers<'_>) -> Reply {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.to_owned()).expect("request builds");
        let reply = read(
            self.agent
                .run(req)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}")),
        );
        self.check(method, path, &reply);
        reply
    }

    fn check(&self, method: &str, path: &str, reply: &Reply) {
        if !self.checked {
            return;
        }
        if let Err(e) =
            openapi::check_answer(method, path, reply.status, &reply.headers, &reply.text)
        {
            panic!(
                "{method} {path} answered {} ({}) unlike openapi.json describes:\n{e}\nbody: {}",
                reply.status, reply.content_type, reply.text
            );
        }
    }
}

fn read(mut r: ureq::http::Response<ureq::Body>) -> Reply {
    let status = r.status().as_u16();
    let headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status,
        content_type,
        headers,
        text,
    }
}
