//! The layer rule of docs/architecture.md, checked on the source: every `src/**/*.rs` is read,
//! its `#[cfg(test)]` items are dropped, and the `crate::` paths it names (in `use` trees with
//! braces too, and `super::`/`self::` paths) are mapped to top-level modules and files. Three
//! rules hold:
//!
//! 1. no module imports a module of a higher layer (the table is [`LAYERS`]);
//! 2. the top-level modules import each other without a cycle;
//! 3. the files of one top-level module import each other without a cycle, except that a file
//!    may import its parent (or any ancestor) module: a child is a private part of its parent.
//!
//! No server, no database: this reads files. The unit tests at the end prove the checks on
//! synthetic sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, bottom first: (layer, what it is, its top-level modules). A module may import
/// modules of its own row (acyclically) or of rows above it in this list. Layer 7 has four rows
/// because its surfaces stack: `http`, then what builds on it, then `app`, then `cli`.
/// Modules that do not exist (yet) are fine; a module that exists and is missing is a failure.
const LAYERS: &[(u8, &str, &[&str])] = &[
    (
        0,
        "vocabulary",
        &[
            "validation",
            "model",
            "wire",
            "telemetry",
            "sentry_reporting",
        ],
    ),
    (1, "storage", &["store"]),
    (
        2,
        "infrastructure",
        &["secrets", "config", "peers", "domain"],
    ),
    (3, "queue vocabulary", &["jobs", "events"]),
    (4, "consequences", &["effects"]),
    (
        5,
        "domain",
        &[
            "auth",
            "audit",
            "content",
            "subscriptions",
            "scheduling",
            "callbacks",
            "integrations",
            "go_metrics",
            "sending",
            "keys",
            "retention",
        ],
    ),
    (6, "runtime", &["runtime"]),
    (7, "surfaces", &["http"]),
    (7, "surfaces", &["admin", "importer", "healthcheck"]),
    (7, "surfaces", &["app"]),
    (7, "surfaces", &["cli"]),
];

/// Imports the layer order allows but the design does not: (from, to, why).
const FORBIDDEN: &[(&str, &str, &str)] = &[(
    "cli",
    "http",
    "the CLI calls domain functions, never the web surface",
)];

// ---- reading the source ----

/// One source file: where it is, its module path (`src/a/b.rs` and `src/a/b/mod.rs` are
/// `["a", "b"]`, `src/lib.rs` is `[]`), and its text with comments, literals and
/// `#[cfg(test)]` items blanked out (newlines kept, so offsets give the same lines).
#[derive(Debug)]
struct SourceFile {
    path: String,
    module: Vec<String>,
    code: String,
}

/// A path a file names: the absolute segments (`crate::a::b` is `["a", "b"]`), the line, and
/// how it reads.
#[derive(Debug, Clone)]
struct Import {
    segments: Vec<String>,
    line: usize,
    text: String,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Blanks comments, string and char literals (lifetimes are kept), keeping newlines.
fn strip_comments_and_literals(src: &str) -> String {
    let s = src.as_bytes();
    let mut out = s.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from..to.min(s.len())] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    let mut i = 0;
    while i < s.len() {
        let prev_ident = i > 0 && is_ident(s[i - 1]);
        if s[i..].starts_with(b"//") {
            let end = s[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(s.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if s[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < s.len() && depth > 0 {
                if s[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if s[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if let Some((body, hashes)) = raw_string_at(s, i).filter(|_| !prev_ident) {
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let end = s[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(s.len(), |p| body + p + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if s[i] == b'"' {
            let mut j = i + 1;
            while j < s.len() && s[j] != b'"' {
                j += if s[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if s[i] == b'\'' {
            // A char literal ('x', '\n', 'é'), or else a lifetime ('a), which stays.
            let end = if s.get(i + 1) == Some(&b'\\') {
                s[i + 3..]
                    .iter()
                    .position(|&b| b == b'\'')
                    .map(|p| i + 3 + p + 1)
            } else {
                let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (s.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 2 + ch_len)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced, whole characters at a time")
}

/// At `r"`, `r#"`, `br"`…: where the raw string's body starts and how many `#` close it.
fn raw_string_at(s: &[u8], i: usize) -> Option<(usize, usize)> {
    let k = match s[i] {
        b'r' => i + 1,
        b'b' if s.get(i + 1) == Some(&b'r') => i + 2,
        _ => return None,
    };
    let hashes = s[k..].iter().take_while(|&&b| b == b'#').count();
    (s.get(k + hashes) == Some(&b'"')).then_some((k + hashes + 1, hashes))
}

/// Blanks every item under `#[cfg(test)]`; returns the code and the names of `#[cfg(test)] mod
/// name;` declarations (their files are test code too).
fn strip_test_items(code: &str) -> (String, Vec<String>) {
    let s = code.as_bytes();
    let mut out = s.to_vec();
    let mut test_mods = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let start = from + p;
        let mut i = start + "#[cfg(test)]".len();
        // Further attributes, then the item up to its `;` or its closing brace.
        loop {
            while i < s.len() && s[i].is_ascii_whitespace() {
                i += 1;
            }
            if s[i..].starts_with(b"#[") {
                i = matching(s, i + 1) + 1;
            } else {
                break;
            }
        }
        let item_start = i;
        let mut depth = 0i32;
        while i < s.len() {
            match s[i] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => break,
                b'{' if depth == 0 => {
                    i = matching(s, i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let item = &code[item_start..i.min(s.len())];
        let words: Vec<&str> = item.split_whitespace().collect();
        if let Some(at) = words.iter().position(|w| *w == "mod") {
            if let Some(name) = words.get(at + 1) {
                if !item.contains('{') {
                    test_mods.push(name.trim_end_matches(';').to_string());
                }
            }
        }
        let end = (i + 1).min(s.len());
        for b in &mut out[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = end;
    }
    (String::from_utf8(out).unwrap(), test_mods)
}

/// The index of the bracket closing the one at `open` (`{`, `[` or `(`).
fn matching(s: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (i, &b) in s.iter().enumerate().skip(open) {
        match b {
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// The files as given (relative path under `src/`, source): module paths, cleaned code; files
/// that only exist for tests (declared `#[cfg(test)] mod x;`) and the binary's `main.rs` left
/// out.
fn parse_files(files: &[(String, String)]) -> Vec<SourceFile> {
    let mut parsed = Vec::new();
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    for (rel, src) in files {
        let rel = rel.replace('\\', "/");
        let Some(stem) = rel.strip_suffix(".rs") else {
            continue;
        };
        if stem == "main" || stem.starts_with("bin/") {
            continue;
        }
        let mut module: Vec<String> = stem.split('/').map(str::to_string).collect();
        if module.last().is_some_and(|m| m == "mod") || stem == "lib" {
            module.pop();
        }
        let (code, test_mods) = strip_test_items(&strip_comments_and_literals(src));
        for name in test_mods {
            let mut child = module.clone();
            child.push(name);
            test_only.insert(child);
        }
        parsed.push(SourceFile {
            path: format!("src/{rel}"),
            module,
            code,
        });
    }
    parsed.retain(|f| !test_only.iter().any(|t| f.module.starts_with(t)));
    parsed
}

/// Every path `file` names that starts at `crate`, `super`, `self` or a child module it
/// declares, as absolute segments; `use` trees with braces are expanded.
fn imports(file: &SourceFile) -> Vec<Import> {
    let s = file.code.as_bytes();
    let children: BTreeSet<String> = declared_modules(&file.code);
    let mut found = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if !is_ident(s[i]) || (i > 0 && is_ident(s[i - 1])) {
            i += 1;
            continue;
        }
        let word_end = i + s[i..].iter().take_while(|&&b| is_ident(b)).count();
        let word = &file.code[i..word_end];
        let after_sep = {
            let j = skip_ws(s, word_end);
            s[j..].starts_with(b"::").then_some(j + 2)
        };
        // Only where a path starts, not in the middle of `a::crate` or after a `.`.
        let before = file.code[..i].trim_end();
        let starts_path = !before.ends_with("::") && !before.ends_with('.');
        if let (Some(rest), true) = (after_sep, starts_path) {
            let base = match word {
                "crate" => Some((Vec::new(), rest)),
                "self" => Some((file.module.clone(), rest)),
                "super" => {
                    let mut base = file.module.clone();
                    base.pop();
                    let mut j = rest;
                    loop {
                        let k = skip_ws(s, j);
                        let m = skip_ws(s, k + 5);
                        if s[k..].starts_with(b"super") && s[m..].starts_with(b"::") {
                            base.pop();
                            j = m + 2;
                        } else {
                            break;
                        }
                    }
                    Some((base, j))
                }
                w if children.contains(w) => {
                    let mut base = file.module.clone();
                    base.push(w.to_string());
                    Some((base, rest))
                }
                _ => None,
            };
            if let Some((base, rest)) = base {
                let line = line_of(s, i);
                let mut paths = Vec::new();
                let end = use_tree(s, rest, base, &mut paths);
                push_paths(&mut found, paths, line);
                i = end.max(word_end);
                continue;
            }
        }
        i = word_end;
    }
    found
}

fn push_paths(found: &mut Vec<Import>, paths: Vec<Vec<String>>, line: usize) {
    for segments in paths {
        let text = std::iter::once("crate")
            .chain(segments.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("::");
        found.push(Import {
            segments,
            line,
            text,
        });
    }
}

/// The names of `mod name;` and `mod name {` declarations in a file.
fn declared_modules(code: &str) -> BTreeSet<String> {
    let words: Vec<&str> = code
        .split(|c: char| !is_ident(c as u8))
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|w| w[0] == "mod")
        .map(|w| w[1].to_string())
        .collect()
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn line_of(s: &[u8], at: usize) -> usize {
    1 + s[..at].iter().filter(|&&b| b == b'\n').count()
}

/// Reads a path (or `use` tree) from `i`, after a `::`, with `prefix` so far; pushes every full
/// path into `out`; returns where it ended.
fn use_tree(s: &[u8], i: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut i = skip_ws(s, i);
    loop {
        if s.get(i) == Some(&b'{') {
            let close = matching(s, i);
            let mut j = i + 1;
            while j < close {
                j = skip_ws(s, j);
                if j >= close {
                    break;
                }
                if s[j] == b',' {
                    j += 1;
                    continue;
                }
                let next = use_tree(s, j, prefix.clone(), out);
                j = if next > j { next } else { j + 1 };
            }
            return close + 1;
        }
        if s.get(i) == Some(&b'*') {
            out.push(prefix);
            return i + 1;
        }
        let end = i + s[i..].iter().take_while(|&&b| is_ident(b)).count();
        if end == i {
            out.push(prefix);
            return i;
        }
        let word = std::str::from_utf8(&s[i..end]).unwrap().to_string();
        if word != "self" {
            prefix.push(word);
        }
        let j = skip_ws(s, end);
        if s[j..].starts_with(b"::") {
            i = skip_ws(s, j + 2);
            if s.get(i) == Some(&b'<') {
                out.push(prefix);
                return i;
            }
        } else {
            out.push(prefix);
            // `name as alias`
            if s[j..].starts_with(b"as") && s.get(j + 2).is_some_and(|b| !is_ident(*b)) {
                let k = skip_ws(s, j + 2);
                return k + s[k..].iter().take_while(|&&b| is_ident(b)).count();
            }
            return j;
        }
    }
}

// ---- the rules ----

/// (index of the row in [`LAYERS`], layer number, layer name) of a top-level module.
fn layer_of(module: &str) -> Option<(usize, u8, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, _, modules))| modules.contains(&module))
        .map(|(rank, (layer, name, _))| (rank, *layer, *name))
}

/// The top-level modules that exist, from the files.
fn top_modules(files: &[SourceFile]) -> BTreeSet<String> {
    files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .collect()
}

/// Each file's imports of other top-level modules: (file, top of file, import, top imported).
fn cross_module_imports(files: &[SourceFile]) -> Vec<(&SourceFile, String, Import, String)> {
    let tops = top_modules(files);
    let mut edges = Vec::new();
    for file in files {
        let Some(from) = file.module.first() else {
            continue; // lib.rs: the crate root declares the modules
        };
        for import in imports(file) {
            match import.segments.first() {
                Some(to) if to != from && tops.contains(to) => {
                    let to = to.clone();
                    edges.push((file, from.clone(), import, to));
                }
                _ => {}
            }
        }
    }
    edges
}

/// Rule 1: failures, one line each.
fn layer_failures(files: &[SourceFile]) -> Vec<String> {
    let mut failures = Vec::new();
    for top in top_modules(files) {
        if layer_of(&top).is_none() {
            failures.push(format!(
                "src/{top}: top-level module `{top}` is in no layer; add it to LAYERS in \
                 tests/architecture.rs and to docs/architecture.md"
            ));
        }
    }
    for (file, from, import, to) in cross_module_imports(files) {
        let (Some(f), Some(t)) = (layer_of(&from), layer_of(&to)) else {
            continue;
        };
        let at = format!("{}:{}: `{}`", file.path, import.line, import.text);
        if t.0 > f.0 {
            failures.push(format!(
                "{at}: `{from}` (layer {} {}) imports `{to}` (layer {} {}), which is above it",
                f.1, f.2, t.1, t.2
            ));
        }
        if let Some((_, _, why)) = FORBIDDEN.iter().find(|(a, b, _)| *a == from && *b == to) {
            failures.push(format!(
                "{at}: `{from}` (layer {} {}) may not import `{to}` (layer {} {}): {why}",
                f.1, f.2, t.1, t.2
            ));
        }
    }
    failures
}

/// The strongly connected components with more than one node (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        found: Vec<Vec<String>>,
    }
    fn visit(v: &str, st: &mut State) {
        let n = st.index.len();
        st.index.insert(v.to_string(), n);
        st.low.insert(v.to_string(), n);
        st.stack.push(v.to_string());
        for w in st.edges.get(v).into_iter().flatten() {
            if !st.index.contains_key(w) {
                visit(w, st);
                let low = st.low[v].min(st.low[w]);
                st.low.insert(v.to_string(), low);
            } else if st.stack.contains(w) {
                let low = st.low[v].min(st.index[w]);
                st.low.insert(v.to_string(), low);
            }
        }
        if st.low[v] == st.index[v] {
            let mut component = Vec::new();
            while let Some(w) = st.stack.pop() {
                let done = w == v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                st.found.push(component);
            }
        }
    }
    let mut st = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    let nodes: BTreeSet<&String> = edges.keys().chain(edges.values().flatten()).collect();
    for v in nodes {
        if !st.index.contains_key(v) {
            visit(v, &mut st);
        }
    }
    st.found.sort();
    st.found
}

/// A graph with a witness (first file:line and path) per edge; failures for its cycles.
fn cycle_failures(what: &str, witnesses: &BTreeMap<(String, String), String>) -> Vec<String> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in witnesses.keys() {
        edges.entry(a.clone()).or_default().insert(b.clone());
    }
    cycles(&edges)
        .into_iter()
        .map(|component| {
            let mut message = format!("{what} in a cycle: {}", component.join(", "));
            for ((a, b), witness) in witnesses {
                if component.contains(a) && component.contains(b) {
                    message.push_str(&format!("\n    {a} -> {b}: {witness}"));
                }
            }
            message
        })
        .collect()
}

/// Rule 2.
fn module_cycle_failures(files: &[SourceFile]) -> Vec<String> {
    let mut witnesses = BTreeMap::new();
    for (file, from, import, to) in cross_module_imports(files) {
        witnesses
            .entry((from, to))
            .or_insert_with(|| format!("{}:{}: `{}`", file.path, import.line, import.text));
    }
    cycle_failures("top-level modules", &witnesses)
}

/// Rule 3: per top-level module, the files; an import names the deepest file whose module path
/// starts it; a file importing itself or an ancestor is no edge.
fn file_cycle_failures(files: &[SourceFile]) -> Vec<String> {
    let mut failures = Vec::new();
    for top in top_modules(files) {
        let own: Vec<&SourceFile> = files
            .iter()
            .filter(|f| f.module.first() == Some(&top))
            .collect();
        let mut witnesses = BTreeMap::new();
        for file in &own {
            for import in imports(file) {
                if import.segments.first() != Some(&top) {
                    continue;
                }
                let Some(target) = own
                    .iter()
                    .filter(|g| import.segments.starts_with(&g.module))
                    .max_by_key(|g| g.module.len())
                else {
                    continue;
                };
                if file.module.starts_with(&target.module) {
                    continue; // itself, or a child importing its parent
                }
                witnesses
                    .entry((file.path.clone(), target.path.clone()))
                    .or_insert_with(|| format!("{}:{}: `{}`", file.path, import.line, import.text));
            }
        }
        failures.extend(cycle_failures(&format!("files of `{top}`"), &witnesses));
    }
    failures
}

// ---- on the real source ----

fn read_src() -> Vec<SourceFile> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    parse_files(&files)
}

#[track_caller]
fn assert_none(rule: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{rule} (docs/architecture.md): {} failure(s)\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_module_imports_a_module_of_a_higher_layer() {
    assert_none("layer rule", layer_failures(&read_src()));
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    assert_none("no module cycles", module_cycle_failures(&read_src()));
}

#[test]
fn the_files_of_a_module_import_each_other_without_a_cycle() {
    assert_none("no file cycles", file_cycle_failures(&read_src()));
}

#[test]
fn the_source_is_found_and_read() {
    let files = read_src();
    assert!(files.iter().any(|f| f.path == "src/lib.rs"));
    let tops = top_modules(&files);
    for module in ["store", "http", "cli"] {
        assert!(tops.contains(module), "{module} among {tops:?}");
    }
    // cli uses the app: the reader sees real imports.
    assert!(cross_module_imports(&files)
        .iter()
        .any(|(_, from, _, to)| from == "cli" && to == "app"));
}

// ---- the checks themselves, on synthetic input ----

fn synthetic(files: &[(&str, &str)]) -> Vec<SourceFile> {
    let owned: Vec<(String, String)> = files
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect();
    parse_files(&owned)
}

fn import_texts(file: &SourceFile) -> Vec<String> {
    imports(file).into_iter().map(|i| i.text).collect()
}

#[test]
fn paths_are_read_from_use_trees_expressions_and_relative_paths() {
    let files = synthetic(&[(
        "jobs/worker.rs",
        "use crate::{store::{self, Db}, model::Job as J};\n\
         use super::enqueue;\n\
         use self::inner::*;\n\
         mod inner;\n\
         // crate::http::ignored in a comment\n\
         fn f<'a>(x: &'a str) { let _ = \"crate::http::in_a_string\"; let _ = ('c', '\\'');\n\
         let _ = r#\"crate::http::raw \"quoted\"\"#; let _ = br\"crate::cli\";\n\
         crate::effects::apply::<u8>(x); super::super::events::record(); inner::go(); }\n",
    )]);
    assert_eq!(
        import_texts(&files[0]),
        [
            "crate::store",
            "crate::store::Db",
            "crate::model::Job",
            "crate::jobs::enqueue",
            "crate::jobs::worker::inner",
            "crate::effects::apply",
            "crate::events::record",
            "crate::jobs::worker::inner::go",
        ]
    );
    let lines: Vec<usize> = imports(&files[0]).iter().map(|i| i.line).collect();
    assert_eq!(lines, [1, 1, 1, 2, 3, 8, 8, 8]);
}

#[test]
fn test_code_is_left_out() {
    let files = synthetic(&[
        (
            "store/mod.rs",
            "use crate::model::X;\n#[cfg(test)]\nmod tests {\n use crate::http::Y;\n}\n\
             #[cfg(test)]\nmod more;\n#[cfg(test)]\nuse crate::app::Z;\nfn after() { crate::wire::w(); }\n",
        ),
        ("store/more.rs", "use crate::cli::Q;\n"),
    ]);
    assert_eq!(files.len(), 1, "store/more.rs is test code");
    assert_eq!(
        import_texts(&files[0]),
        ["crate::model::X", "crate::wire::w"]
    );
    assert!(layer_failures(&files).is_empty());
}

#[test]
fn an_import_of_a_higher_layer_fails_with_file_line_and_both_layers() {
    let files = synthetic(&[
        (
            "effects.rs",
            "\nuse crate::http::representation::Callback;\n",
        ),
        ("http/mod.rs", "use crate::effects::Change;\n"),
        (
            "cli.rs",
            "use crate::app::App;\nuse crate::http::error::ApiError;\n",
        ),
        ("app.rs", "use crate::http::router;\n"),
        ("gadgets.rs", ""),
    ]);
    let failures = layer_failures(&files);
    assert_eq!(
        failures,
        [
            "src/gadgets: top-level module `gadgets` is in no layer; add it to LAYERS in \
             tests/architecture.rs and to docs/architecture.md",
            "src/effects.rs:2: `crate::http::representation::Callback`: `effects` (layer 4 \
             consequences) imports `http` (layer 7 surfaces), which is above it",
            "src/cli.rs:2: `crate::http::error::ApiError`: `cli` (layer 7 surfaces) may not \
             import `http` (layer 7 surfaces): the CLI calls domain functions, never the web \
             surface",
        ]
    );
}

#[test]
fn a_cycle_of_modules_fails_naming_each_edge() {
    let files = synthetic(&[
        (
            "content/mod.rs",
            "use crate::subscriptions::Subscription;\n",
        ),
        ("subscriptions/mod.rs", "use crate::content::Message;\n"),
        ("sending/mod.rs", "use crate::content::Message;\n"),
    ]);
    assert!(layer_failures(&files).is_empty(), "one layer");
    assert_eq!(
        module_cycle_failures(&files),
        ["top-level modules in a cycle: content, subscriptions\n    \
          content -> subscriptions: src/content/mod.rs:1: `crate::subscriptions::Subscription`\n    \
          subscriptions -> content: src/subscriptions/mod.rs:1: `crate::content::Message`"]
    );
}

#[test]
fn files_of_a_module_may_import_their_parent_but_not_each_other_in_a_cycle() {
    let parent_only = synthetic(&[
        ("jobs/mod.rs", "mod worker;\npub use worker::Worker;\n"),
        (
            "jobs/worker.rs",
            "use super::Job;\nuse crate::jobs::enqueue;\n",
        ),
    ]);
    assert!(file_cycle_failures(&parent_only).is_empty());

    let siblings = synthetic(&[
        ("jobs/mod.rs", ""),
        ("jobs/a.rs", "use super::b::B;\n"),
        ("jobs/b.rs", "\nuse crate::jobs::a::{A, AA};\n"),
    ]);
    assert_eq!(
        file_cycle_failures(&siblings),
        [
            "files of `jobs` in a cycle: src/jobs/a.rs, src/jobs/b.rs\n    \
          src/jobs/a.rs -> src/jobs/b.rs: src/jobs/a.rs:1: `crate::jobs::b::B`\n    \
          src/jobs/b.rs -> src/jobs/a.rs: src/jobs/b.rs:2: `crate::jobs::a::A`"
        ]
    );
}

/// The top-level module graph as the rules see it, one line per module.
#[test]
#[ignore = "a diagnostic: cargo test --test architecture -- --ignored --nocapture"]
fn prints_the_module_graph() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, from, _, to) in cross_module_imports(&read_src()) {
        edges.entry(from).or_default().insert(to);
    }
    for (a, b) in edges {
        println!("{a} -> {}", b.into_iter().collect::<Vec<_>>().join(" "));
    }
}
