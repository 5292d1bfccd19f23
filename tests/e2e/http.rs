//! A small blocking HTTP client for the tests: every status is a value to assert on.

use std::time::Duration;

use serde_json::Value;

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
}

pub type Headers<'a> = &'a [(&'a str, &'a str)];

impl Client {
    pub fn new(base: String) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_redirects(0)
            .build()
            .into();
        Client { base, agent }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        let r = self.agent.get(&self.url(path)).call()?;
        Ok(read(r))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: Headers<'_>) -> Reply {
        let mut req = self.agent.get(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.call().unwrap_or_else(|e| panic!("GET {path}: {e}")))
    }

    pub fn delete_with(&self, path: &str, headers: Headers<'_>) -> Reply {
        let mut req = self.agent.delete(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.call().unwrap_or_else(|e| panic!("DELETE {path}: {e}")))
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
        self.agent.run(req).map(read)
    }

    pub fn send(&self, method: &str, path: &str, body: &str, headers: Headers<'_>) -> Reply {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.to_owned()).expect("request builds");
        read(
            self.agent
                .run(req)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}")),
        )
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
