//! ARCHITECTURE.md stays true: every path its codemap names exists, every crate's
//! `Cargo.toml` keeps to the dependency table, and every code comment that cites an
//! invariant by number names the invariant with that number.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap()
}

/// The text of ARCHITECTURE.md outside fenced code blocks.
fn prose(doc: &str) -> String {
    doc.split("```").step_by(2).collect::<Vec<_>>().join("\n")
}

/// The section of `doc` under the `## {title}` heading.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc
        .find(&format!("## {title}\n"))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no section {title:?}"));
    let body = &doc[start + title.len() + 4..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

/// Whether `token` reads as a path: a slash or a file extension, no spaces, and not
/// an HTTP path, a Rust path or an MQTT topic.
fn looks_like_path(token: &str) -> bool {
    let file = [".rs", ".md", ".toml", ".sh", ".json"]
        .iter()
        .any(|x| token.ends_with(x));
    (token.contains('/') || file)
        && !token.starts_with('/')
        && !token.contains(char::is_whitespace)
        && !token.contains("::")
        && !token.contains(['{', '$', '"'])
        && !token.starts_with("fixahead/")
}

#[test]
fn every_path_the_architecture_names_exists() {
    let doc = prose(&architecture());
    let mut checked = 0;
    // A codemap bullet `- `store/`: ...` names paths relative to its crate, or to its
    // crate's `src/`; other paths are relative to the repository.
    let mut base = PathBuf::new();
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("- `") {
            if let Some((first, _)) = rest.split_once('`') {
                if first.ends_with('/') {
                    base = PathBuf::from(first);
                }
            }
        } else if !line.starts_with("  ") {
            base = PathBuf::new();
        }
        for (i, span) in line.split('`').enumerate() {
            let candidates: Vec<&str> = if i % 2 == 1 {
                vec![span]
            } else {
                // Unquoted: only the docs/ guides, as the map cites them.
                span.split_whitespace()
                    .map(|w| w.trim_matches(|c: char| ",.;:()".contains(c)))
                    .filter(|w| w.starts_with("docs/") && w.ends_with(".md"))
                    .collect()
            };
            for c in candidates.into_iter().filter(|c| looks_like_path(c)) {
                // A glob names the directory it looks in.
                let path = c.split('*').next().unwrap_or(c);
                let found = [
                    root().join(path),
                    root().join(&base).join(path),
                    root().join(&base).join("src").join(path),
                ]
                .iter()
                .any(|p| p.exists());
                assert!(
                    found,
                    "ARCHITECTURE.md names `{c}` (under `{}`), which does not exist",
                    base.display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} paths found: is the parser right?"
    );
}

/// The workspace's crates: name -> directory.
fn workspace_crates() -> BTreeMap<String, PathBuf> {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let dir = root().join(m.as_str().unwrap());
            let crate_manifest: toml::Value =
                toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
            let name = crate_manifest["package"]["name"]
                .as_str()
                .unwrap()
                .to_owned();
            (name, dir)
        })
        .collect()
}

/// The workspace crates `dir`'s package depends on, normal and dev.
fn internal_deps(dir: &Path, workspace: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
    ["dependencies", "dev-dependencies"]
        .iter()
        .filter_map(|table| manifest.get(*table).and_then(toml::Value::as_table))
        .flat_map(|t| t.keys().cloned())
        .filter(|name| workspace.contains_key(name))
        .collect()
}

#[test]
fn every_crate_keeps_to_the_dependency_table() {
    let doc = architecture();
    let table = section(&doc, "Dependency rules");
    let mut allowed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let deps = cells[2]
            .split(',')
            .map(|d| d.trim().trim_matches('`').to_owned())
            .filter(|d| !d.is_empty() && d != "none")
            .collect();
        allowed.insert(name, deps);
    }
    let workspace = workspace_crates();
    let root_package = workspace
        .iter()
        .find(|(_, dir)| *dir == &root())
        .map(|(name, _)| name.clone())
        .expect("the root package is a member");
    let libraries: BTreeSet<&String> = workspace.keys().filter(|n| **n != root_package).collect();
    assert_eq!(
        allowed.keys().collect::<BTreeSet<_>>(),
        libraries,
        "the table lists exactly the library crates"
    );
    for (name, dir) in &workspace {
        let deps = internal_deps(dir, &workspace);
        if *name == root_package {
            continue;
        }
        assert!(
            !deps.contains(&root_package),
            "{name} depends on the root package"
        );
        let forbidden: Vec<&String> = deps.difference(&allowed[name]).collect();
        assert!(
            forbidden.is_empty(),
            "{name} depends on {forbidden:?}, which ARCHITECTURE.md's dependency table does not allow"
        );
    }
    assert!(
        !internal_deps(&workspace["api"], &workspace).contains("ingest"),
        "api must not depend on ingest"
    );
}

/// `(number, name)` of every invariant in ARCHITECTURE.md.
fn invariants(doc: &str) -> BTreeMap<u32, String> {
    let marker = "**Architecture Invariant ";
    let mut out = BTreeMap::new();
    for piece in section(doc, "Invariants").split(marker).skip(1) {
        let (number, rest) = piece.split_once(" (").expect("a number and a name");
        let name = &rest[..rest.find(").**").expect("the name closes")];
        out.insert(number.parse().unwrap(), name.to_owned());
    }
    out
}

/// Every `.rs` file of the workspace (not `target/`).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The text of a file with comment markers at line starts joined away, so a citation
/// that wraps over two comment lines reads as one.
fn joined(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim_start();
        let t = ["//!", "///", "//"]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t);
        out.push_str(t.trim());
        out.push(' ');
    }
    out
}

#[test]
fn every_cited_invariant_is_named_by_its_number() {
    let list = invariants(&architecture());
    assert!(list.len() >= 10, "{list:?}");
    let mut files = Vec::new();
    sources(&root(), &mut files);
    let mut cited = 0;
    for file in files {
        let text = joined(&std::fs::read_to_string(&file).unwrap()).to_lowercase();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("invariant ") {
            rest = &rest[at + "invariant ".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                continue;
            }
            let after = &rest[digits.len()..];
            let name = after
                .strip_prefix(" \"")
                .and_then(|a| a.split_once('"'))
                .map(|(name, _)| name);
            let number: u32 = digits.parse().unwrap();
            let expected = list.get(&number).map(|n| n.to_lowercase());
            assert!(
                name.is_some() && name.map(str::to_owned) == expected,
                "{} cites invariant {number} as {name:?}; ARCHITECTURE.md calls it {expected:?} (cite as `invariant N \"name\"`)",
                file.display()
            );
            cited += 1;
        }
    }
    assert!(
        cited >= 5,
        "only {cited} citations found: is the parser right?"
    );
}
