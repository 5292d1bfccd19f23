//! The crates and the worker's layers keep their shape.
//!
//! - The pure core (`crates/core`) has no runtime dependency: no Workers runtime, no JavaScript
//!   glue, no platform randomness in its normal dependency tree, on any target.
//! - The sandbox shares nothing with the worker or the core: it is a second, independent reading
//!   of the provider's documents.
//! - Inside the worker, no module imports from a layer above its own (the order is in
//!   `src/lib.rs`); a module the table below does not know fails the check until it is placed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates a pure core must not reach: they bind it to the Workers runtime or to the platform.
const RUNTIME_CRATES: [&str; 5] = ["worker", "js-sys", "wasm-bindgen", "web-sys", "getrandom"];

/// The worker's top-level modules and the rank of their layer; a module may import its own
/// rank and those below.
const LAYERS: &[(&str, u8)] = &[
    ("log", 1),
    ("meter", 1),
    ("ids", 1),
    ("outbound", 1),
    ("slots", 1),
    ("concurrently", 1),
    ("access_keys", 1),
    ("store", 2),
    ("psp", 2),
    ("context", 3),
    ("views", 4),
    ("services", 5),
    ("api", 6),
    // src/lib.rs: the `#[event]` entry points.
    ("lib", 7),
];

/// Macros exported at the crate root, and the module that defines each.
const MACROS: &[(&str, &str)] = &[
    ("fields", "log"),
    ("integer_fields", "log"),
    ("params", "store"),
    ("row", "store"),
    ("sql", "store"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The package names in `cargo tree -p <package> -e normal` over every target.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args(["tree", "--locked", "-p", package, "-e", "normal"])
        .args(["--target", "all", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn runtime_crates_in(deps: &BTreeSet<String>) -> Vec<&'static str> {
    RUNTIME_CRATES
        .into_iter()
        .filter(|name| deps.contains(*name))
        .collect()
}

#[test]
fn the_core_has_no_runtime_dependency() {
    let core = normal_dependencies("recurring-core");
    assert!(core.contains("recurring-core"), "{core:?}");
    assert_eq!(runtime_crates_in(&core), Vec::<&str>::new(), "{core:?}");
    // The same reading of the worker finds them: the check looks where they would be.
    let worker = normal_dependencies("recurring-edge");
    assert_eq!(runtime_crates_in(&worker), RUNTIME_CRATES.to_vec());
    assert!(worker.contains("recurring-core"));
}

#[test]
fn the_sandbox_shares_no_code_with_the_worker() {
    let sandbox = normal_dependencies("psp-sandbox");
    for ours in ["recurring-core", "recurring-edge"] {
        assert!(!sandbox.contains(ours), "the sandbox depends on {ours}");
    }
}

/// The worker's top-level module a source file belongs to (`src/store/db.rs` → `store`).
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

fn rank(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

/// The worker modules a source text names through `crate::` (paths and root macros).
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        // `$crate::` in a macro body names this crate too.
        let rest = &text[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        // A root macro is named with its `!`, or imported by its bare name.
        let module = match MACROS.iter().find(|(m, _)| *m == name) {
            Some((_, defined_in)) => (*defined_in).to_owned(),
            None => name,
        };
        found.insert(module);
    }
    found
}

/// Every import of a module from a layer above the importer's, or of a module with no layer.
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        let module = module_of(path);
        let Some(own) = rank(&module) else {
            found.push(format!(
                "{}: module `{module}` has no layer",
                path.display()
            ));
            continue;
        };
        for used in referenced_modules(text) {
            match rank(&used) {
                None => found.push(format!(
                    "{}: `crate::{used}` names a module with no layer",
                    path.display()
                )),
                Some(r) if r > own => found.push(format!(
                    "{}: `{module}` (layer {own}) imports `{used}` (layer {r})",
                    path.display()
                )),
                Some(_) => {}
            }
        }
    }
    found
}

fn sources(dir: &Path, base: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, base, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.strip_prefix(base).unwrap().to_owned(), text));
        }
    }
}

#[test]
fn no_worker_module_imports_from_a_layer_above_it() {
    let src = root().join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    assert!(files.len() > 50, "read {} files", files.len());
    assert_eq!(violations(&files), Vec::<String>::new());
}

#[test]
fn the_layer_check_finds_an_upward_import_and_an_unknown_module() {
    let files = vec![
        (
            PathBuf::from("store/charges.rs"),
            "use crate::services::charging::Mode;\nlet q = crate::sql!(\"SELECT 1\");".to_owned(),
        ),
        (
            PathBuf::from("services/tick.rs"),
            "use crate::api::load_config;\nuse crate::store::db::Db;".to_owned(),
        ),
        (
            PathBuf::from("views/charge.rs"),
            "crate::fields! {}; use crate::reports::x;".to_owned(),
        ),
        (PathBuf::from("reports.rs"), String::new()),
    ];
    assert_eq!(
        violations(&files),
        vec![
            "store/charges.rs: `store` (layer 2) imports `services` (layer 5)",
            "services/tick.rs: `services` (layer 5) imports `api` (layer 6)",
            "views/charge.rs: `crate::reports` names a module with no layer",
            "reports.rs: module `reports` has no layer",
        ]
    );
}
