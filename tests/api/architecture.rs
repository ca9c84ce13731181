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

/// Every path a use tree (or an inline path) starting at `tail` names, segment by segment:
/// `a::{b::c, d}` → `[a, b, c]`, `[a, d]`; `self` adds nothing, `x as y` is `x`.
fn use_tree_paths(tail: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = tail.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut paths = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        paths.extend(use_tree_paths(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        paths.extend(use_tree_paths(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return paths
                .into_iter()
                .map(|p| prefix.iter().cloned().chain(p).collect())
                .collect();
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            break;
        }
        rest = &rest[name.len()..];
        if name != "self" {
            prefix.push(name);
        }
        match rest.trim_start().strip_prefix("::") {
            Some(after) => rest = after.trim_start(),
            None => break,
        }
    }
    if prefix.is_empty() {
        Vec::new()
    } else {
        vec![prefix]
    }
}

/// Every path of the crate `code` names: `(line, segments after crate::)`.
fn crate_paths(code: &str) -> Vec<(usize, Vec<String>)> {
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
            for path in use_tree_paths(&code[after..]) {
                found.push((line_of(start), path));
            }
        }
        at = after;
    }
    found
}

/// Every forbidden path in a file of `layer` with text `text`: `"line: crate::module"`.
fn violations_in(layer: &str, text: &str) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    crate_paths(&without_comments(text))
        .into_iter()
        .filter(|(_, path)| !allowed(layer, &path[0]))
        .map(|(line, path)| format!("{line}: crate::{}", path[0]))
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

/// The contexts of `src/services/`, from low to high: a context may name only itself and those
/// ranked below it (ARCHITECTURE.md).
const CONTEXTS: [&str; 9] = [
    "platform",
    "accounts",
    "medicinal",
    "catalog",
    "commerce",
    "payments",
    "notifications",
    "privacy",
    "integrations",
];

/// The one file of `src/services/` outside the ranks: it assembles the contexts (job kinds,
/// subscribers, in-transaction reactions), so it names them all, and platform's hooks name it.
const COMPOSITION: &str = "composition";

/// Every path to a context ranked above `context` in a file of that context:
/// `"line: crate::services::<context>"`. Outside the ranks (`composition`, `mod.rs`) nothing is.
fn rank_violations_in(context: &str, text: &str) -> Vec<String> {
    let Some(rank) = CONTEXTS.iter().position(|c| *c == context) else {
        return Vec::new();
    };
    let mut seen = std::collections::BTreeSet::new();
    crate_paths(&without_comments(text))
        .into_iter()
        .filter(|(_, path)| path.len() > 1 && path[0] == "services")
        .filter(|(_, path)| {
            let target = path[1].as_str();
            target != COMPOSITION
                && CONTEXTS
                    .iter()
                    .position(|c| *c == target)
                    .is_none_or(|t| t > rank)
        })
        .map(|(line, path)| format!("{line}: crate::services::{}", path[1]))
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

/// The context of a file under `src/services/` (`src/services/commerce/orders.rs` → `commerce`);
/// the files directly under it are `mod` and `composition`.
fn context_of(file: &Path, src: &Path) -> Option<String> {
    let rel = file.strip_prefix(src.join("services")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
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
        let mut found = violations_in(&layer, &text);
        if let Some(context) = context_of(file, &src) {
            *checked.entry(format!("services::{context}")).or_default() += 1;
            found.extend(rank_violations_in(&context, &text));
        }
        for v in found {
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
    for context in CONTEXTS {
        assert!(
            checked
                .get(&format!("services::{context}"))
                .copied()
                .unwrap_or(0)
                > 0,
            "no file in src/services/{context}"
        );
    }
    assert!(
        breaches.is_empty(),
        "forbidden imports across layers (see ARCHITECTURE.md):\n{}",
        breaches.join("\n")
    );
}

/// `src/services/` holds its contexts' folders, `mod.rs` and the composition file, nothing else;
/// each context's `mod.rs` opens with a comment saying what the context owns.
#[test]
fn services_are_contexts_each_saying_what_it_owns() {
    let services = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/services");
    let mut loose = Vec::new();
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(&services).expect("src/services") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            folders.push(name);
        } else if name != "mod.rs" && name != format!("{COMPOSITION}.rs") {
            loose.push(name);
        }
    }
    assert!(
        loose.is_empty(),
        "files directly under src/services/ (give each a context): {loose:?}"
    );
    folders.sort();
    let mut contexts: Vec<String> = CONTEXTS.iter().map(|c| c.to_string()).collect();
    contexts.sort();
    assert_eq!(folders, contexts, "the context folders are the ranked ones");
    for context in CONTEXTS {
        let text = std::fs::read_to_string(services.join(context).join("mod.rs"))
            .unwrap_or_else(|e| panic!("src/services/{context}/mod.rs: {e}"));
        let first = text.lines().next().unwrap_or("");
        assert!(
            first.starts_with("//! ") && first.len() > 20,
            "src/services/{context}/mod.rs must open with a //! comment saying what it owns, not {first:?}"
        );
    }
}

/// The calls that list job kinds, periodic work, outbox subscribers and in-transaction reactions. Outside the composition
/// root (`src/services/composition.rs`) no code makes them, so the one list of what this build
/// runs is there.
const REGISTRATIONS: [&str; 6] = [
    "Registry::new()",
    "Subscribers::new()",
    "Reactions::new()",
    ".periodic(",
    ".every(",
    "dispatch::register(",
];

/// Where the registration calls may stand besides the composition root: the job machinery that
/// defines them (`infra/jobs/`), the outbox's own dispatch job and schedule, which the root's call
/// to `dispatch::register` adds (`services/platform/events/dispatch.rs`), and `metrics.rs`, whose
/// `Registry::new()` is Prometheus's.
const REGISTERING: [&str; 4] = [
    "services/composition.rs",
    "infra/jobs/",
    "services/platform/events/dispatch.rs",
    "metrics.rs",
];

/// Every registration call in `text`: `"line: call"`.
fn registrations_in(text: &str) -> Vec<String> {
    let code = without_comments(text);
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for call in REGISTRATIONS {
            if line.contains(call) {
                found.push(format!("{}: {call}", n + 1));
            }
        }
    }
    found
}

/// The job machinery names no context (the `infra` rule), and only the composition root lists job
/// kinds, periodic work and subscribers.
#[test]
fn only_the_composition_root_lists_job_kinds_and_subscribers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut breaches = Vec::new();
    let mut machinery = 0;
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(file).expect("a readable source file");
        if rel.starts_with("infra/jobs/") {
            machinery += 1;
            for v in violations_in("infra", &text) {
                breaches.push(format!("{rel} {v}"));
            }
        }
        // The contexts never call the root (it calls them): no circle runs through it.
        if rel.starts_with("services/") && rel != "services/composition.rs" {
            for (n, path) in crate_paths(&without_comments(&text)) {
                if path.len() > 1 && path[0] == "services" && path[1] == "composition" {
                    breaches.push(format!("{rel} {n}: crate::services::composition"));
                }
            }
        }
        if REGISTERING.iter().any(|r| rel.starts_with(r)) {
            continue;
        }
        for v in registrations_in(&text) {
            breaches.push(format!("{rel} {v}"));
        }
    }
    assert!(machinery > 0, "no job machinery under src/infra/jobs/");
    assert!(
        breaches.is_empty(),
        "job kinds and subscribers are listed in src/services/composition.rs only:\n{}",
        breaches.join("\n")
    );
    // The checker finds each call, and not in comments.
    let planted = "fn f() {\n    let r = Registry::new().with(X);\n    // Subscribers::new()\n    r.periodic(d, Purge);\n}\n";
    assert_eq!(
        registrations_in(planted),
        ["2: Registry::new()", "4: .periodic("]
    );
    let jobs_reaching_up = "use crate::services::privacy::erasure::EraseAccount;";
    assert_eq!(
        violations_in("infra", jobs_reaching_up),
        ["1: crate::services"]
    );
}

#[test]
fn the_ranks_of_the_contexts_are_checked() {
    // Downwards and sideways are fine; upwards is not, grouped or inline.
    let orders = "use crate::services::platform::events;\nuse crate::services::catalog::products;\nuse crate::services::commerce::inventory;\n";
    assert!(rank_violations_in("commerce", orders).is_empty());
    let up = "use crate::services::privacy::erasure;\nfn f() { crate::services::payments::owe_refund(); }\n";
    assert_eq!(
        rank_violations_in("commerce", up),
        [
            "1: crate::services::privacy",
            "2: crate::services::payments"
        ]
    );
    let grouped = "use crate::services::{accounts::auth, notifications::mail};";
    assert_eq!(
        rank_violations_in("catalog", grouped),
        ["1: crate::services::notifications"]
    );
    let nested =
        "use crate::{error::AppError, services::{commerce::{orders, cart}, platform::jobs}};";
    assert_eq!(
        rank_violations_in("accounts", nested),
        ["1: crate::services::commerce"]
    );
    // A module under services that is no context (a file put back under services/) is refused.
    assert_eq!(
        rank_violations_in("platform", "use crate::services::helpers::x;"),
        ["1: crate::services::helpers"]
    );
    // The composition file is outside the ranks, both ways; so is services/mod.rs.
    assert!(
        rank_violations_in("platform", "crate::services::composition::react_now(c);").is_empty()
    );
    assert!(rank_violations_in(COMPOSITION, "use crate::services::privacy::erasure;").is_empty());
    assert!(rank_violations_in("mod", "use crate::services::privacy::erasure;").is_empty());
    // Comments are not paths.
    assert!(rank_violations_in("platform", "// see crate::services::payments").is_empty());
}

#[test]
fn the_checker_finds_each_kind_of_forbidden_path() {
    let services = "use crate::error::AppResult;\nuse crate::graphql::scalars::Timestamp;\n";
    assert_eq!(violations_in("services", services), ["2: crate::graphql"]);
    let grouped = "use crate::{\n    entities::order,\n    http::App,\n};\n";
    assert_eq!(violations_in("services", grouped), ["1: crate::http"]);
    let nested = "use crate::{db::{self, begin_write}, rest::routes};";
    assert_eq!(violations_in("graphql", nested), ["1: crate::rest"]);
    let inline = "fn f() { let _ = crate::services::commerce::orders::transition; }";
    assert_eq!(violations_in("entities", inline), ["1: crate::services"]);
    let domain = "use crate::error::AppError;\nuse crate::domain::Email;\n";
    assert_eq!(violations_in("domain", domain), ["1: crate::error"]);
    // Comments and allowed directions are not breaches.
    let fine = "// use crate::http::App;\n/* crate::rest */ use crate::entities::order;\n";
    assert!(violations_in("services", fine).is_empty());
    assert!(violations_in("rest", "use crate::http::App;").is_empty());
    assert!(violations_in("graphql", "use crate::services::commerce::orders;").is_empty());
    // The rooms below services: configuration, infrastructure, the state, the kernel, entities.
    let config = "use crate::entities::payment::Provider;\nuse crate::infra::mail::Transport;\n";
    assert_eq!(violations_in("config", config), ["2: crate::infra"]);
    let config_up = "pub smtp: Option<crate::services::notifications::mail::SmtpSettings>,";
    assert_eq!(violations_in("config", config_up), ["1: crate::services"]);
    let infra = "use crate::config::Config;\nuse crate::state::AppState;\n";
    assert_eq!(violations_in("infra", infra), ["2: crate::state"]);
    assert_eq!(
        violations_in("infra", "use crate::services::platform::jobs;"),
        ["1: crate::services"]
    );
    let state = "use crate::infra::tokens::TokenKeys;\nuse crate::http::response_cache::ResponseCache;\nuse crate::graphql::persisted::PersistedQueries;\nuse crate::services::notifications::mail;\n";
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

/// The code with comments, string and character literals blanked (newlines kept), so that its
/// braces can be counted.
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let ident = |k: usize| b[k].is_alphanumeric() || b[k] == '_';
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, from: usize, to: usize| {
        for &c in &b[from..to.min(b.len())] {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < b.len() {
        let (c, next) = (b[i], b.get(i + 1).copied());
        // A raw string: r"…", r#"…"#, br"…" (an `r` that does not end an identifier).
        let raw_start = c == 'r'
            && matches!(next, Some('#' | '"'))
            && (i == 0 || !ident(i - 1) || (b[i - 1] == 'b' && (i < 2 || !ident(i - 2))));
        if c == '/' && next == Some('/') {
            let end = (i..b.len()).find(|&k| b[k] == '\n').unwrap_or(b.len());
            blank(&mut out, i, end);
            i = end;
        } else if c == '/' && next == Some('*') {
            let (mut depth, mut j) = (0, i);
            while j < b.len() {
                if b[j] == '/' && b.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == '*' && b.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if raw_start {
            let mut j = i + 1;
            let hashes = b[j..].iter().take_while(|&&h| h == '#').count();
            j += hashes;
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len() && !(b[j] == '"' && (1..=hashes).all(|k| b.get(j + k) == Some(&'#')))
            {
                j += 1;
            }
            blank(&mut out, i, j + 1 + hashes);
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != '"' {
                j += if b[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{7f}', '\''); otherwise a lifetime.
            let end = if next == Some('\\') {
                (i + 3..b.len()).find(|&k| b[k] == '\'')
            } else {
                (b.get(i + 2) == Some(&'\'')).then_some(i + 2)
            };
            match end {
                Some(e) => {
                    blank(&mut out, i, e + 1);
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The functions of a file outside its tests (from `#[cfg(test)]` on), with their first line
/// and their length in lines, signature and closing brace included.
fn function_lengths(text: &str) -> Vec<(usize, String, usize)> {
    let code = code_only(text);
    let lines: Vec<&str> = code.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len());
    let mut found = Vec::new();
    for start in 0..end {
        let mut words = lines[start].split_whitespace().skip_while(|w| {
            w.starts_with("pub") || matches!(*w, "async" | "const" | "unsafe" | "default")
        });
        if words.next() != Some("fn") {
            continue;
        }
        let name: String = words
            .next()
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0usize;
        let mut closed = None;
        'scan: for (n, line) in lines.iter().enumerate().skip(start) {
            for c in line.chars() {
                match c {
                    ';' if depth == 0 => break 'scan,
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            closed = Some(n);
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(last) = closed {
            found.push((start + 1, name, last - start + 1));
        }
    }
    found
}

/// The longest a function in `src/` may be (tests aside): longer ones hold several ideas.
const MAX_FUNCTION_LINES: usize = 150;

#[test]
fn no_function_in_src_is_longer_than_150_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut measured = 0;
    let mut too_long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (line, name, length) in function_lengths(&text) {
            measured += 1;
            if length > MAX_FUNCTION_LINES {
                let rel = file
                    .strip_prefix(&src)
                    .unwrap_or(file)
                    .display()
                    .to_string();
                too_long.push(format!("src/{rel}:{line} {name}: {length} lines"));
            }
        }
    }
    assert!(
        measured > 500,
        "only {measured} functions found: the scanner is broken"
    );
    assert!(
        too_long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them by idea):\n{}",
        too_long.join("\n")
    );
}

#[test]
fn function_lengths_count_code_not_literals_or_tests() {
    let body = "    let x = 1;\n".repeat(150);
    let text = format!(
        "/// Doc with a brace {{\npub(crate) async fn long() {{\n{body}}}\n\
         fn short<'a>(s: &'a str) -> char {{\n    let _ = \"}} {{ \\\" }}\";\n    let _ = r#\"}}\"#;\n    \
         let _ = b'{{';\n    // }}\n    '}}'\n}}\n\
         trait T {{\n    fn declared(&self);\n}}\n\
         #[cfg(test)]\nmod tests {{\n    fn in_tests() {{\n{body}    }}\n}}\n"
    );
    let found = function_lengths(&text);
    assert_eq!(
        found,
        [(2, "long".to_string(), 152), (154, "short".to_string(), 7),]
    );
}
