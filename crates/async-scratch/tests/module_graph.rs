//! The library's modules depend on each other one way only: no module uses a module
//! that uses it back, directly or through others.
//!
//! A textbook is read in an order; a cycle means two concepts that cannot be read
//! one before the other. This reads the sources (code lines, not comments), collects
//! which top-level module names which (`crate::time`, say), and looks for a cycle.
#![cfg(not(miri))] // reads files: nothing for Miri to check

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Top-level module → the top-level modules its code names.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_module_depends_on_itself_through_others() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.contains_key("executor") && graph.contains_key("time"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}\ngraph: {graph:#?}", cycle.join(" -> "));
    }
}

/// The checker itself finds a cycle when there is one.
#[test]
fn a_cycle_is_found() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_string(), BTreeSet::from([to.to_string()])))
        .collect();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}

fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let named = graph.entry(module.clone()).or_default();
        for other in crate_paths(&fs::read_to_string(&file).unwrap()) {
            if other != module {
                named.insert(other);
            }
        }
    }
    graph
}

fn rust_files(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
    files
}

/// The module names after `crate::` in the code lines of `source` (comment lines,
/// doc comments included, are skipped: a doc link is not a dependency).
fn crate_paths(source: &str) -> BTreeSet<String> {
    let code = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"));
    let mut names = BTreeSet::new();
    for line in code {
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// A cycle in `graph`, as the path that closes it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| seen == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new()))
}
