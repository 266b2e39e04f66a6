//! The workspace's shape, held: the host's layers import only downwards, and no source file of
//! core, firmware or host imports another that imports it back (directly or round a circle).
//!
//! Read from the source text: every `crate::a::b` path (in `use` lines, grouped
//! `use crate::{a, b::c}` ones included, and inline) and every `super::a` path, resolved to the
//! file that defines the module. A file's unit tests (from its `#[cfg(test)]` to the end) are
//! left out: they may reach anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module (as its path) with its file and its code before its unit tests.
type Modules = BTreeMap<Vec<String>, (PathBuf, String)>;
/// Imports, as (importing module, imported module).
type Edges = BTreeSet<(Vec<String>, Vec<String>)>;

/// The host's layers, lowest first: a module may import its own layer and those before it.
const LAYERS: &[&str] = &[
    "retry", "model", "batch", "device", "sink", "source", "web", "app", "cli", "commands",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, as its module path (`["web", "api"]`; `mod.rs` and `lib.rs`
/// are their folder's module), with its text before its unit tests.
fn modules(dir: &Path) -> Modules {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("a source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(dir).expect("under the folder");
            let mut module: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            // Binaries (`src/bin/*.rs`) are crates of their own.
            if module.first().is_some_and(|m| m == "bin") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            let code = match text.find("#[cfg(test)]") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(module, (path, code));
        }
    }
    out
}

/// The paths a file names after `crate::` or `super::` (`super` resolved against `module`),
/// each as module segments (an item's name may end it; resolution takes the longest module).
fn imports(module: &[String], is_folder: bool, code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| {
                p.trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|p| !p.is_empty())
            .collect()
    };
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            // `super` of a file module is its folder's module; of a folder's `mod.rs`, the
            // folder's parent.
            let mut m = module.to_vec();
            if !is_folder || !m.is_empty() {
                m.pop();
            }
            m
        }),
    ] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let heads: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                // `{a, b::c, d::{e, f}}`: the first segment of each top-level entry, and the
                // entry itself.
                let mut depth = 0;
                let mut entries = vec![String::new()];
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            entries.push(String::new());
                            continue;
                        }
                        _ => {}
                    }
                    if let Some(e) = entries.last_mut() {
                        e.push(c);
                    }
                }
                entries
            } else {
                vec![rest.to_string()]
            };
            for h in heads {
                let path = ident(&h);
                if path.is_empty() {
                    continue;
                }
                let mut full = base.clone();
                full.extend(path);
                out.push(full);
            }
        }
    }
    out
}

/// The module among `known` that `path` names: its longest known prefix.
fn resolve<'a>(path: &[String], known: &'a Modules) -> Option<&'a Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| known.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// The file-to-file imports of one crate.
fn graph(src: &Path) -> (Modules, Edges) {
    let known = modules(src);
    let mut edges = BTreeSet::new();
    for (module, (path, code)) in &known {
        let is_folder = path
            .file_stem()
            .is_some_and(|s| s == "mod" || s == "lib" || s == "main");
        for target in imports(module, is_folder, code) {
            if let Some(to) = resolve(&target, &known)
                && to != module
            {
                edges.insert((module.clone(), to.clone()));
            }
        }
    }
    (known, edges)
}

#[test]
fn layers_import_only_downwards() {
    let (known, edges) = graph(&workspace().join("host/src"));
    let rank = |m: &[String]| {
        m.first()
            .and_then(|top| LAYERS.iter().position(|l| l == top))
    };
    for m in known.keys() {
        assert!(
            m.is_empty() || rank(m).is_some(),
            "host/src/{}: a module in no layer (add it to LAYERS and to the README's map)",
            m.join("/")
        );
    }
    let up: Vec<String> = edges
        .iter()
        .filter(|(from, to)| matches!((rank(from), rank(to)), (Some(f), Some(t)) if t > f))
        .map(|(from, to)| format!("{} imports {}", from.join("::"), to.join("::")))
        .collect();
    assert!(up.is_empty(), "imports that run up the layers: {up:#?}");
    // The check sees imports at all: the layers above the model import it.
    assert!(edges.contains(&(vec!["device".to_string()], vec!["model".to_string()])));
    assert!(edges.contains(&(
        vec!["app".to_string(), "builder".to_string()],
        vec!["device".to_string()]
    )));
}

#[test]
fn no_source_file_imports_one_that_imports_it_back() {
    for krate in ["core/src", "firmware/src", "host/src"] {
        let (known, edges) = graph(&workspace().join(krate));
        assert!(!edges.is_empty(), "{krate}: no imports read");
        // Depth-first search for a cycle, reporting the first found.
        let next = |m: &Vec<String>| -> Vec<&Vec<String>> {
            edges
                .iter()
                .filter(|(from, _)| from == m)
                .map(|(_, to)| to)
                .collect()
        };
        let mut done = BTreeSet::new();
        for start in known.keys() {
            let mut path: Vec<&Vec<String>> = Vec::new();
            let mut stack = vec![(start, 0usize)];
            while let Some((m, i)) = stack.pop() {
                if i == 0 {
                    if let Some(at) = path.iter().position(|p| *p == m) {
                        let circle: Vec<String> = path[at..].iter().map(|p| p.join("::")).collect();
                        panic!(
                            "{krate}: an import circle: {} -> {}",
                            circle.join(" -> "),
                            m.join("::")
                        );
                    }
                    if done.contains(m) {
                        continue;
                    }
                    path.push(m);
                }
                let targets = next(m);
                if i < targets.len() {
                    stack.push((m, i + 1));
                    stack.push((targets[i], 0));
                } else {
                    path.pop();
                    done.insert(m.clone());
                }
            }
        }
    }
}

/// The reader finds a circle when there is one (so the test above can fail).
#[test]
fn a_circle_is_seen() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("lib.rs"), "pub mod a;\npub mod b;\n").expect("write");
    std::fs::write(dir.path().join("a.rs"), "use crate::b::B;\npub struct A;\n").expect("write");
    std::fs::write(
        dir.path().join("b.rs"),
        "use crate::{a::A, other};\npub struct B;\n",
    )
    .expect("write");
    let (_, edges) = graph(dir.path());
    let a = vec!["a".to_string()];
    let b = vec!["b".to_string()];
    assert!(edges.contains(&(a.clone(), b.clone())) && edges.contains(&(b, a)));
}
