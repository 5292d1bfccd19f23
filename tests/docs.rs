//! The documentation a team navigates: every relative link and anchor of the README, `docs/`,
//! the changelog and the benchmarks resolves, and the settings page lists exactly the settings
//! and bindings the worker reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = vec![
        root().join("README.md"),
        root().join("CHANGELOG.md"),
        root().join("BENCHMARKS.md"),
    ];
    walk(&root().join("docs"), &mut out);
    out.sort();
    out
}

/// The page's text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// Every `[text](target)` and `![alt](target)` of the prose.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|_| panic!("{} is missing", page.display()));
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with('<')
            {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", page.display()));
                continue;
            }
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&text).contains(anchor) {
                    broken.push(format!("{}: {link} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "\n{}", broken.join("\n"));
}

#[test]
fn every_page_under_docs_is_in_the_table_of_contents() {
    let toc = std::fs::read_to_string(root().join("docs/README.md")).unwrap();
    let listed: BTreeSet<PathBuf> = links(&toc)
        .iter()
        .map(|l| root().join("docs").join(l.split('#').next().unwrap()))
        .collect();
    let missing: Vec<String> = pages()
        .into_iter()
        .filter(|p| p.starts_with(root().join("docs")) && !p.ends_with("docs/README.md"))
        .filter(|p| {
            !listed
                .iter()
                .any(|l| l.canonicalize().ok() == p.canonicalize().ok())
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "not in docs/README.md: {missing:?}");
}

/// Names in backticks at the start of a table row.
fn listed_settings(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect()
}

/// String literals of `SHOUTING_CASE` in a source file: the names it reads.
fn shouted(source: &str) -> BTreeSet<String> {
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() >= 2
                && s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_settings_page_lists_every_setting_the_worker_reads() {
    let config = std::fs::read_to_string(root().join("crates/core/src/config.rs")).unwrap();
    let context = std::fs::read_to_string(root().join("src/context.rs")).unwrap();
    let mut read: BTreeSet<String> = shouted(&config);
    // The bindings, named where the worker opens them.
    for name in shouted(&context) {
        read.insert(name);
    }
    let dashboard = std::fs::read_to_string(root().join("src/api/dashboard.rs")).unwrap();
    for line in dashboard
        .lines()
        .filter(|l| l.starts_with("const ") && l.contains("&str = \""))
    {
        read.extend(shouted(line));
    }
    let page = std::fs::read_to_string(root().join("docs/reference/settings.md")).unwrap();
    let listed = listed_settings(&page);
    let unlisted: Vec<&String> = read.difference(&listed).collect();
    let unread: Vec<&String> = listed.difference(&read).collect();
    assert!(
        unlisted.is_empty() && unread.is_empty(),
        "read but not on docs/reference/settings.md: {unlisted:?}; listed but never read: {unread:?}"
    );
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(
        slug("Checkout, the portal and the customer's browser"),
        "checkout-the-portal-and-the-customers-browser"
    );
    assert_eq!(slug("`GET /v1/monitoring`"), "get-v1monitoring");
}

fn cargo_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

fn latest_migration() -> String {
    let mut names: Vec<String> = std::fs::read_dir(root().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    names.pop().unwrap()
}

#[test]
fn the_version_is_the_same_everywhere_and_follows_the_schema() {
    let version = cargo_version();
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).unwrap();
    let released = changelog
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .find(|l| !l.starts_with("Unreleased"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    assert_eq!(
        released, version,
        "the changelog's latest version is Cargo's"
    );
    let minor: u32 = version.split('.').nth(1).unwrap().parse().unwrap();
    assert!(
        latest_migration().starts_with(&format!("{minor:04}_")),
        "version 0.{minor} ships migration {:04}, the latest is {}",
        minor,
        latest_migration()
    );
    let openapi: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("openapi.json")).unwrap())
            .unwrap();
    assert_eq!(openapi["info"]["version"], version.as_str());
    let monitoring = std::fs::read_to_string(root().join("docs/operate/monitoring.md")).unwrap();
    assert!(
        monitoring.contains(&format!("\"version\": \"{version}\""))
            && monitoring.contains(&format!("\"schema {}\"", latest_migration())),
        "the /health example shows this version and the latest schema"
    );
}
