//! The module graph of `src/` (issue 11): no module imports one that
//! imports it back, and the core's lower layers stay below the ones that
//! use them. Test-only code (`#[cfg(test)]` items and files) may reach up.
//! `python3 scripts/modgraph.py` prints the same graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Files declared `#[cfg(test)] mod name;`.
fn test_only_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        let stem = f.file_stem().unwrap().to_str().unwrap();
        let base = if matches!(stem, "mod" | "lib" | "main") {
            f.parent().unwrap().to_path_buf()
        } else {
            f.with_extension("")
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for w in lines.windows(2) {
            let decl = w[1]
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            if w[0] == "#[cfg(test)]" {
                if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                    out.insert(base.join(format!("{name}.rs")));
                    out.insert(base.join(name).join("mod.rs"));
                }
            }
        }
    }
    out
}

/// The text of `text` without `#[cfg(test)]` items and comments.
fn non_test_code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            let (mut depth, mut started) = (0i64, false);
            i += 1;
            while i < lines.len() {
                let l = lines[i];
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                started |= l.contains('{') || l.trim_end().ends_with(';');
                i += 1;
                if started && depth <= 0 {
                    break;
                }
            }
            continue;
        }
        out.push_str(lines[i].split("//").next().unwrap_or(""));
        out.push('\n');
        i += 1;
    }
    out
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let tests = test_only_files(&files);
    let mut g = Graph::new();
    for f in files.iter().filter(|f| !tests.contains(*f)) {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let code = non_test_code(&std::fs::read_to_string(f).unwrap());
        let deps = g.entry(top.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                deps.insert(name);
            }
        }
    }
    g
}

/// Whether `to` is reachable from `from`.
fn reaches(g: &Graph, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        for d in g.get(&m).into_iter().flatten() {
            if d == to {
                return true;
            }
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    false
}

#[test]
fn the_module_graph_has_no_cycle_and_the_core_points_down() {
    let g = graph();
    assert!(
        g.contains_key("repo") && g["jobs"].contains("repo"),
        "{g:?}"
    );
    let cycles: Vec<String> = g
        .keys()
        .flat_map(|m| g[m].iter().map(move |d| (m, d)))
        .filter(|(m, d)| reaches(&g, d, m))
        .map(|(m, d)| format!("{m} -> {d}"))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:?}\n{g:#?}");
    // The check: the repository, storage and the engines import no
    // catalog, job or operation; storage not even the config.
    for (low, high) in [
        ("repo", "catalog"),
        ("repo", "jobs"),
        ("repo", "ops"),
        ("storage", "catalog"),
        ("storage", "config"),
        ("engine", "catalog"),
        ("engine", "jobs"),
        ("engine", "ops"),
    ] {
        assert!(!reaches(&g, low, high), "{low} reaches {high}: {g:#?}");
    }
    for core in [
        "repo", "storage", "engine", "catalog", "config", "ops", "jobs",
    ] {
        assert!(!g[core].contains("cli"), "{core} imports cli");
    }
}
