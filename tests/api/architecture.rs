//! The layers, enforced: every `crate::` path of every file under `src/` (in `use` statements,
//! grouped or not, and written inline) is checked against what its layer may depend on. Every
//! top-level module of the crate has a rule; a new one fails here until it is given one.
//!
//! - `domain` depends on nothing in the crate but itself (the standard library and crates only);
//! - `entities` only on `domain`;
//! - `config` only on `domain`, `entities` and `error`;
//! - the kernel (`actor`, `clock`, `db`, `error`, `metrics`, `trace_id`, `util`) not on `infra`,
//!   `state`, `seed`, `services`, `graphql`, `rest` or `http`;
//! - `infra` not on `state`, `seed`, `services`, `graphql`, `rest` or `http`;
//! - `state` only on `clock`, `config`, `db`, `metrics`, `infra`, `error`, `domain`, `entities`;
//! - `services` and `seed` not on `graphql`, `rest` or `http`;
//! - `graphql` not on `rest` or `http`;
//! - `http` not on `rest` (the REST layer sits on top of it);
//! - `rest`, and the crate's root (`lib.rs`, `main.rs`, which assemble the app), on anything.

use std::path::{Path, PathBuf};

/// The module of the crate a file belongs to (`src/services/x.rs` → `services`).
fn layer_of(file: &Path, src: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Whether a file of `layer` may name `crate::<target>`.
fn allowed(layer: &str, target: &str) -> bool {
    const KERNEL: [&str; 7] = [
        "actor", "clock", "db", "error", "metrics", "trace_id", "util",
    ];
    const SURFACES: [&str; 3] = ["graphql", "rest", "http"];
    let upper = |extra: &[&str]| !(SURFACES.contains(&target) || extra.contains(&target));
    if target == layer {
        return true;
    }
    match layer {
        "domain" => false,
        "entities" => target == "domain",
        "config" => matches!(target, "domain" | "entities" | "error"),
        l if KERNEL.contains(&l) => upper(&["infra", "state", "seed", "services"]),
        "infra" => upper(&["state", "seed", "services"]),
        "state" => matches!(
            target,
            "clock" | "config" | "db" | "metrics" | "infra" | "error" | "domain" | "entities"
        ),
        "services" | "seed" => upper(&[]),
        "graphql" => !matches!(target, "rest" | "http"),
        "http" => target != "rest",
        "rest" | "lib" | "main" => true,
        _ => false,
    }
}

/// The code of a file without its comments (line and block).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let line = rest.find("//");
        let block = rest.find("/*");
        match (line, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                rest = &rest[b + 2..];
                rest = &rest[rest.find("*/").map_or(rest.len(), |e| e + 2)..];
            }
            _ => {
                out.push_str(rest);
                rest = "";
            }
        }
    }
    out
}

/// The first segment of each path a `use crate::…;` tree names (`{a::b, c}` → `a`, `c`).
fn use_tree_roots(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(inner) = tree.strip_prefix('{') else {
        let first = tree.split("::").next().unwrap_or("");
        return vec![first.split_whitespace().next().unwrap_or("").to_string()];
    };
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let mut roots = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                roots.extend(use_tree_roots(&inner[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    roots.extend(use_tree_roots(&inner[start..]));
    roots.retain(|r| !r.is_empty() && r != "self");
    roots
}

/// Every module of the crate `code` names: `(line, module)`.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i;
        let after = start + "crate::".len();
        let boundary = start == 0 || {
            let b = code.as_bytes()[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        if boundary {
            let tail = &code[after..];
            if tail.starts_with('{') {
                let end = tail.find(';').unwrap_or(tail.len());
                for root in use_tree_roots(&tail[..end]) {
                    found.push((line_of(start), root));
                }
            } else {
                let name: String = tail
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((line_of(start), name));
                }
            }
        }
        at = after;
    }
    found
}

/// Every forbidden path in a file of `layer` with text `text`: `"line: crate::module"`.
fn violations_in(layer: &str, text: &str) -> Vec<String> {
    crate_paths(&without_comments(text))
        .into_iter()
        .filter(|(_, target)| !allowed(layer, target))
        .map(|(line, target)| format!("{line}: crate::{target}"))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_layer_imports_what_it_must_not() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    let mut breaches = Vec::new();
    for file in &files {
        let Some(layer) = layer_of(file, &src) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a readable source file");
        *checked.entry(layer.clone()).or_default() += 1;
        for v in violations_in(&layer, &text) {
            breaches.push(format!(
                "{} {v}",
                file.strip_prefix(&src).unwrap().display()
            ));
        }
    }
    // The walk saw the layers it guards (a moved `src/` must not make this pass vacuously).
    for layer in [
        "entities", "services", "graphql", "domain", "config", "infra", "state", "http", "db",
    ] {
        assert!(
            checked.get(layer).copied().unwrap_or(0) > 0,
            "no file in src/{layer}"
        );
    }
    assert!(
        breaches.is_empty(),
        "forbidden imports across layers (see ARCHITECTURE.md):\n{}",
        breaches.join("\n")
    );
}

#[test]
fn the_checker_finds_each_kind_of_forbidden_path() {
    let services = "use crate::error::AppResult;\nuse crate::graphql::scalars::Timestamp;\n";
    assert_eq!(violations_in("services", services), ["2: crate::graphql"]);
    let grouped = "use crate::{\n    entities::order,\n    http::App,\n};\n";
    assert_eq!(violations_in("services", grouped), ["1: crate::http"]);
    let nested = "use crate::{db::{self, begin_write}, rest::routes};";
    assert_eq!(violations_in("graphql", nested), ["1: crate::rest"]);
    let inline = "fn f() { let _ = crate::services::orders::transition; }";
    assert_eq!(violations_in("entities", inline), ["1: crate::services"]);
    let domain = "use crate::error::AppError;\nuse crate::domain::Email;\n";
    assert_eq!(violations_in("domain", domain), ["1: crate::error"]);
    // Comments and allowed directions are not breaches.
    let fine = "// use crate::http::App;\n/* crate::rest */ use crate::entities::order;\n";
    assert!(violations_in("services", fine).is_empty());
    assert!(violations_in("rest", "use crate::http::App;").is_empty());
    assert!(violations_in("graphql", "use crate::services::orders;").is_empty());
    // The rooms below services: configuration, infrastructure, the state, the kernel, entities.
    let config = "use crate::entities::payment::Provider;\nuse crate::infra::mail::Transport;\n";
    assert_eq!(violations_in("config", config), ["2: crate::infra"]);
    let config_up = "pub smtp: Option<crate::services::mail::SmtpSettings>,";
    assert_eq!(violations_in("config", config_up), ["1: crate::services"]);
    let infra = "use crate::config::Config;\nuse crate::state::AppState;\n";
    assert_eq!(violations_in("infra", infra), ["2: crate::state"]);
    assert_eq!(
        violations_in("infra", "use crate::services::jobs;"),
        ["1: crate::services"]
    );
    let state = "use crate::infra::tokens::TokenKeys;\nuse crate::http::response_cache::ResponseCache;\nuse crate::graphql::persisted::PersistedQueries;\nuse crate::services::mail;\n";
    assert_eq!(
        violations_in("state", state),
        ["2: crate::http", "3: crate::graphql", "4: crate::services"]
    );
    assert_eq!(
        violations_in(
            "db",
            "use crate::config::Config;\nuse crate::state::AppState;"
        ),
        ["2: crate::state"]
    );
    assert_eq!(
        violations_in(
            "entities",
            "use crate::domain::Rut;\nuse crate::error::AppError;"
        ),
        ["2: crate::error"]
    );
    assert_eq!(
        violations_in(
            "http",
            "use crate::graphql::AppSchema;\nuse crate::rest::routes;"
        ),
        ["2: crate::rest"]
    );
    // A top-level module without a rule is refused until it is given one; the root assembles all.
    assert_eq!(
        violations_in("plugins", "use crate::error::AppError;"),
        ["1: crate::error"]
    );
    assert!(violations_in("lib", "use crate::rest::router;").is_empty());
    // A name merely ending in `crate` is not a crate path.
    assert!(violations_in("domain", "let subcrate::x = 1;").is_empty());
}
