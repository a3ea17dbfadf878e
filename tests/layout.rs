//! The layout's rule, checked over the source text: every import points down. Files are the
//! nodes; a file names another by a `crate::`, `super::` or `self::` path (or a `mod.rs` names
//! a child); declaring a module is not an import. Unit tests at the end of a file are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `src/`, as its path from `src/` with `/` separators.
fn files(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("src folder") {
        let path: PathBuf = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under src");
            let name: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            out.insert(
                name.join("/"),
                std::fs::read_to_string(&path).expect("source"),
            );
        }
    }
}

/// The module path of a file: `web/mod.rs` is `web`, `web/sse.rs` is `web::sse`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts
}

/// Identifier runs after `start` in `text` joined by `::` (`crate::web::sse::Feed` gives
/// `["web", "sse", "Feed"]`), and the names inside a `{…}` group right after.
fn paths_after<'a>(text: &'a str, start: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(start) {
        let begin = from + at;
        from = begin + start.len();
        let before = text[..begin].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut segments = Vec::new();
        let mut rest = &text[from..];
        while let Some(tail) = rest.strip_prefix("::") {
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if len == 0 {
                if let Some(group) = tail.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    for name in group[..end].split(',') {
                        let name = name.trim().split("::").next().unwrap_or_default();
                        let mut p = segments.clone();
                        p.push(name);
                        out.push(p);
                    }
                }
                break;
            }
            segments.push(&tail[..len]);
            rest = &tail[len..];
        }
        if !segments.is_empty() {
            out.push(segments);
        }
    }
    out
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    files(&root, &root, &mut sources);
    let modules: BTreeMap<Vec<String>, String> = sources
        .keys()
        .filter(|f| *f != "main.rs")
        .map(|f| (module_of(f), f.clone()))
        .collect();
    // The deepest module a path names.
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .find_map(|n| modules.get(&path[..n]).cloned())
    };
    let mut graph = Graph::new();
    for (file, text) in &sources {
        if file == "main.rs" || file == "lib.rs" {
            continue;
        }
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let me = module_of(file);
        let mut edges = BTreeSet::new();
        for (start, base) in [
            ("crate", Vec::new()),
            ("super", me[..me.len().saturating_sub(1)].to_vec()),
            ("self", me.clone()),
        ] {
            for path in paths_after(&code, start) {
                let mut full = base.clone();
                full.extend(path.iter().map(|s| s.to_string()));
                if let Some(target) = resolve(&full)
                    && target != *file
                {
                    edges.insert(target);
                }
            }
        }
        // A folder's front (`mod.rs`) naming a child by its bare name: `kick::run(…)`.
        if file.ends_with("mod.rs") {
            for (path, target) in &modules {
                if path.len() == me.len() + 1 && path.starts_with(&me) {
                    let name = format!("{}::", path[me.len()]);
                    let named = code.match_indices(&name).any(|(at, _)| {
                        !code[..at]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                    });
                    if named {
                        edges.insert(target.clone());
                    }
                }
            }
        }
        graph.insert(file.clone(), edges);
    }
    graph
}

/// The files on a cycle through `start`, if there is one.
fn cycle_through(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                return Some(path.clone());
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn no_two_files_import_each_other_directly_or_round_a_loop() {
    let graph = graph();
    assert!(
        graph.len() > 40,
        "read the source tree: {} files",
        graph.len()
    );
    assert!(
        graph["web/sse.rs"].contains("frame.rs"),
        "the reader sees imports: {:?}",
        graph["web/sse.rs"]
    );
    let cycles: Vec<Vec<String>> = graph
        .keys()
        .filter_map(|f| cycle_through(&graph, f))
        .collect();
    assert!(cycles.is_empty(), "imports that run back up: {cycles:#?}");
}

#[test]
fn only_main_knows_app() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    files(&root, &root, &mut sources);
    let naming: Vec<&String> = sources
        .iter()
        .filter(|(f, text)| {
            *f != "main.rs" && *f != "lib.rs" && *f != "app.rs" && text.contains("crate::app")
        })
        .map(|(f, _)| f)
        .collect();
    assert!(naming.is_empty(), "{naming:?} reach up to app.rs");
}

#[test]
fn the_reader_finds_a_cycle_when_there_is_one() {
    let mut g = Graph::new();
    g.insert("a.rs".into(), ["b.rs".to_string()].into());
    g.insert("b.rs".into(), ["c.rs".to_string()].into());
    g.insert("c.rs".into(), ["a.rs".to_string()].into());
    assert_eq!(
        cycle_through(&g, "a.rs"),
        Some(vec!["a.rs".into(), "b.rs".into(), "c.rs".into()])
    );
    g.insert("c.rs".into(), BTreeSet::new());
    assert_eq!(cycle_through(&g, "a.rs"), None);
    let paths = paths_after("use crate::web::{sse, state::State};", "crate");
    assert!(paths.contains(&vec!["web", "sse"]), "{paths:?}");
    assert!(paths.contains(&vec!["web", "state"]), "{paths:?}");
}
