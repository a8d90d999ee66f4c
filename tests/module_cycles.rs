//! No import cycle between the library's top-level modules (`src/<module>.rs`, `src/<module>/`),
//! so each module can be read knowing only the ones it imports. `.ci/run` runs this file on its
//! own, and `cargo test` runs it with everything else.
//!
//! It scans every `.rs` file of the library (`src/`, or the tree named by `MODULE_CYCLES_SRC`)
//! and records each reference from one top-level module to another:
//! - `crate::x` and `$crate::x` anywhere in code: `use` lines, expressions, types, macro and
//!   attribute arguments (`#[error("…", crate::http::MAX)]`);
//! - `use crate::{x::A, y::B}` groups;
//! - `super::` and `self::` chains that climb out of the module (inline `mod … {}` blocks
//!   counted), and bare `x::` paths in the crate root, where `x` is a module;
//! - string literals that are entirely a path (`#[serde(with = "crate::x::codec")]`);
//! - `crate::Item` for an item of the crate root (`crate::Config`) is a reference to the root,
//!   which imports most modules.
//!
//! Comments and other string literals do not count: a doc link or a message is not an import.
//! Rules: no cycle (each is printed with the file and line of every edge in it), and nothing
//! outside `testkit` (feature-gated test support, which may use anything) refers to `testkit`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The crate root as a node of the graph.
const ROOT: &str = "crate";
/// Test support: may import anything, must not be imported.
const TESTKIT: &str = "testkit";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Str(String),
    Other,
}

/// Rust source → tokens with their line numbers. Comments vanish; strings, raw strings, byte
/// strings, char literals and lifetimes are told apart so a quote inside one cannot derail the rest.
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if ch == '"' {
            let (text, next, lines) = quoted(&c, i + 1);
            out.push((Tok::Str(text), start_line));
            line += lines;
            i = next;
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char literal: '\n', '\'', '\u{1F600}'.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3; // 'a', '"'
            } else {
                i += 1; // a lifetime or label: its name lexes as an identifier
            }
            out.push((Tok::Other, start_line));
        } else if ch == '$' && c[i + 1..].starts_with(&['c', 'r', 'a', 't', 'e']) {
            i += 1; // `$crate` is `crate`
        } else if ch.is_alphabetic() || ch == '_' {
            let s = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[s..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            if raw_prefix && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '#' | '"'))) {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1; // the opening quote
                let s = i;
                loop {
                    if i >= c.len() {
                        break;
                    }
                    if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                        break;
                    }
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
                out.push((Tok::Str(c[s..i.min(c.len())].iter().collect()), start_line));
                i += 1 + hashes;
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                let (text, next, lines) = quoted(&c, i + 1);
                out.push((Tok::Str(text), start_line));
                line += lines;
                i = next;
            } else if word == "b" && at(i) == '\'' {
                i += if at(i + 1) == '\\' { 4 } else { 3 };
                while i < c.len() && c[i - 1] != '\'' {
                    i += 1;
                }
                out.push((Tok::Other, start_line));
            } else if word == "r" && at(i) == '#' && (at(i + 1).is_alphabetic() || at(i + 1) == '_')
            {
                i += 1; // a raw identifier: r#type
            } else {
                out.push((Tok::Ident(word), start_line));
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Other, start_line));
        } else {
            let tok = match ch {
                ':' if at(i + 1) == ':' => {
                    i += 1;
                    Tok::PathSep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                _ => Tok::Other,
            };
            out.push((tok, start_line));
            i += 1;
        }
    }
    out
}

/// The contents of a `"…"` literal starting after its quote: (text, index after the closing
/// quote, newlines inside).
fn quoted(c: &[char], mut i: usize) -> (String, usize, usize) {
    let (mut text, mut lines) = (String::new(), 0);
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            i += 1;
        }
        if let Some(&ch) = c.get(i) {
            lines += usize::from(ch == '\n');
            text.push(ch);
        }
        i += 1;
    }
    (text, i + 1, lines)
}

/// One reference from a top-level module to another.
#[derive(Debug, Clone)]
struct Site {
    file: String,
    line: usize,
    path: String,
}

/// `from → to → where`, over top-level modules and [`ROOT`].
type Graph = BTreeMap<String, BTreeMap<String, Vec<Site>>>;

/// The module path a file defines: `lib.rs` = [], `a.rs` and `a/mod.rs` = [a], `a/b.rs` = [a, b].
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap_or_default();
    match file.as_str() {
        "lib.rs" if parts.is_empty() => {}
        "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first identifier of each item of the `{…}` group opening at `toks[open]`.
fn group_heads(toks: &[(Tok, usize)], open: usize) -> Vec<String> {
    let (mut heads, mut depth, mut expect) = (Vec::new(), 0, true);
    for (tok, _) in &toks[open..] {
        match tok {
            Tok::Open => {
                depth += 1;
                expect = depth == 1;
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Comma if depth == 1 => expect = true,
            Tok::Ident(id) if expect && depth == 1 => {
                heads.push(id.clone());
                expect = false;
            }
            _ => expect = false,
        }
    }
    heads
}

/// The top-level modules named at `toks[i]`, which follows a path that resolved to the root;
/// anything but a name or a group (a glob, `use super::*`) takes the root's items.
fn heads_at(toks: &[(Tok, usize)], i: usize) -> Vec<String> {
    match toks.get(i) {
        Some((Tok::Ident(id), _)) => vec![id.clone()],
        Some((Tok::Open, _)) => group_heads(toks, i),
        _ => vec![ROOT.to_owned()],
    }
}

/// Where a `crate::`/`super::`/`self::` path written in module `current` starts: how many
/// leading segments the climb takes, and the top-level module it stops in (`None` = the root,
/// so the next segment names the module). `None` overall: not such a path.
fn resolve_start(segments: &[&str], current: &[String]) -> Option<(usize, Option<String>)> {
    match segments.first()? {
        &"crate" => Some((1, None)),
        &"self" | &"super" => {
            let ups = segments.iter().take_while(|s| **s == "super").count();
            let depth = current.len().checked_sub(ups)?;
            let consumed = if segments[0] == "self" { 1 } else { ups };
            Some((consumed, (depth > 0).then(|| current[0].clone())))
        }
        _ => None,
    }
}

/// Builds the graph of references between top-level modules under `src`.
fn scan(src: &Path) -> (Graph, BTreeSet<String>) {
    let lib = std::fs::read_to_string(src.join("lib.rs"))
        .unwrap_or_else(|e| panic!("read {}/lib.rs: {e}", src.display()));
    let lib_toks = lex(&lib);
    let mut modules = BTreeSet::new();
    for w in lib_toks.windows(2) {
        if let [(Tok::Ident(m), _), (Tok::Ident(name), _)] = w
            && m == "mod"
        {
            modules.insert(name.clone());
        }
    }
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap().to_path_buf();
        let module = module_of(&rel);
        let own = match module.first() {
            None if rel == Path::new("lib.rs") => ROOT.to_owned(),
            Some(top) if modules.contains(top) => top.clone(),
            _ => continue, // main.rs (the binary crate), bin/, stray files
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let toks = lex(&text);
        let shown = Path::new("src").join(&rel).display().to_string();
        let mut record = |to: &str, line: usize, path: String| {
            let to = if modules.contains(to) { to } else { ROOT };
            if to != own {
                graph
                    .entry(own.clone())
                    .or_default()
                    .entry(to.to_owned())
                    .or_default()
                    .push(Site {
                        file: shown.clone(),
                        line,
                        path,
                    });
            }
        };
        // Inline `mod name {` blocks: (name, brace depth inside it).
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        for i in 0..toks.len() {
            let (tok, line) = &toks[i];
            match tok {
                Tok::Open => {
                    depth += 1;
                    if let (Some((Tok::Ident(m), _)), Some((Tok::Ident(name), _))) = (
                        i.checked_sub(2).map(|j| &toks[j]),
                        i.checked_sub(1).map(|j| &toks[j]),
                    ) && m == "mod"
                    {
                        inline.push((name.clone(), depth));
                    }
                    continue;
                }
                Tok::Close => {
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                    depth = depth.saturating_sub(1);
                    continue;
                }
                _ => {}
            }
            let after_sep = i > 0 && toks[i - 1].0 == Tok::PathSep;
            let mut current = module.clone();
            current.extend(inline.iter().map(|(n, _)| n.clone()));
            match tok {
                Tok::Ident(word) if !after_sep => {
                    // The path's segments: word (:: word)*, stopping before a group.
                    let mut segments = vec![word.as_str()];
                    let mut j = i + 1;
                    while let (Some((Tok::PathSep, _)), Some((Tok::Ident(next), _))) =
                        (toks.get(j), toks.get(j + 1))
                    {
                        segments.push(next);
                        j += 2;
                    }
                    let continues = toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep);
                    if !continues {
                        continue;
                    }
                    let written = segments.join("::");
                    match resolve_start(&segments, &current) {
                        Some((_, Some(top))) => record(&top, *line, written),
                        Some((consumed, None)) => {
                            // Climbed to the root: the next segment (or group) names the module.
                            let at = i + 2 * consumed;
                            for head in heads_at(&toks, at) {
                                if head != "self" {
                                    record(&head, *line, written.clone());
                                }
                            }
                        }
                        None if current.is_empty() && modules.contains(word) => {
                            record(word, *line, written);
                        }
                        None => {}
                    }
                }
                Tok::Str(s) => {
                    let segments: Vec<&str> = s.split("::").collect();
                    let is_path = segments.len() > 1
                        && segments.iter().all(|p| {
                            !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_')
                        });
                    if !is_path {
                        continue;
                    }
                    match resolve_start(&segments, &current) {
                        Some((_, Some(top))) => record(&top, *line, s.clone()),
                        Some((consumed, None)) => {
                            if let Some(head) = segments.get(consumed) {
                                record(head, *line, s.clone());
                            }
                        }
                        None => {}
                    }
                }
                _ => {}
            }
        }
    }
    (graph, modules)
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// The shortest cycle through the first module of `component`, as `a → b → … → a`.
fn one_cycle(graph: &Graph, component: &[String]) -> Vec<String> {
    let start = &component[0];
    let inside: BTreeSet<&String> = component.iter().collect();
    let mut parent: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
            if w == start {
                let mut chain = Vec::new();
                let mut at = v;
                while at != start {
                    chain.push(at.clone());
                    at = parent[at];
                }
                chain.reverse();
                let mut path = vec![start.clone()];
                path.extend(chain);
                path.push(start.clone());
                return path;
            }
            if inside.contains(w) && !parent.contains_key(w) && w != start {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    component.to_vec()
}

fn site_list(sites: &[Site]) -> String {
    let mut text: Vec<String> = sites
        .iter()
        .take(3)
        .map(|s| format!("{}:{} ({})", s.file, s.line, s.path))
        .collect();
    if sites.len() > 3 {
        text.push(format!("and {} more", sites.len() - 3));
    }
    text.join(", ")
}

/// Every broken rule, as text for a person.
fn problems(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for component in cycles(graph) {
        let mut text = format!(
            "import cycle between modules {}: {}\n  edges inside it:\n",
            component.join(", "),
            one_cycle(graph, &component).join(" → ")
        );
        for from in &component {
            for (to, sites) in &graph[from] {
                if component.contains(to) {
                    let _ = writeln!(text, "    {from} → {to}: {}", site_list(sites));
                }
            }
        }
        found.push(text);
    }
    for (from, edges) in graph {
        if from != TESTKIT
            && let Some(sites) = edges.get(TESTKIT)
        {
            found.push(format!(
                "{from} refers to {TESTKIT} (test support must not be part of the product): {}",
                site_list(sites)
            ));
        }
    }
    found
}

#[test]
fn library_modules_have_no_import_cycle() {
    let src = std::env::var_os("MODULE_CYCLES_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let (graph, modules) = scan(&src);
    assert!(
        modules.len() > 5 && graph.values().map(BTreeMap::len).sum::<usize>() > 10,
        "the scan found too little to be right: modules {modules:?}, graph {graph:?}"
    );
    let found = problems(&graph);
    assert!(found.is_empty(), "\n{}", found.join("\n"));
    // `cargo test --test module_cycles -- --nocapture` shows what each module imports.
    for module in modules.iter().chain([&ROOT.to_owned()]) {
        let imports: Vec<&str> = graph
            .get(module)
            .into_iter()
            .flat_map(|e| e.keys().map(String::as_str))
            .collect();
        println!("{module} → {}", imports.join(", "));
    }
}

/// A small crate exercising every kind of reference the scan must see, and those it must not.
fn synthetic(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn edges(graph: &Graph) -> BTreeSet<(String, String)> {
    graph
        .iter()
        .flat_map(|(from, to)| to.keys().map(move |t| (from.clone(), t.clone())))
        .collect()
}

#[test]
fn the_scan_sees_paths_in_code_macros_attributes_and_climbs() {
    let dir = synthetic(&[
        (
            "lib.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\npub use d::Thing;\n\
             pub mod proto { tonic::include_proto!(\"x\"); }\n",
        ),
        // Only the attribute's string path counts; the comment, the message and the doc do not.
        (
            "a.rs",
            "//! See [`crate::e::Z`] and crate::e::Z.\n/* crate::e::Z /* nested */ crate::e::Z */\n\
             fn f<'x>(s: &'x str) -> char { let _ = \"crate::e::Z here\"; let _ = r#\"a \"quoted\" crate::e::Z\"#; '\"' }\n\
             #[derive(serde::Deserialize)]\nstruct S { #[serde(with = \"crate::b::codec\")] x: u8 }\n",
        ),
        // super::super from a submodule reaches the root, then names c.
        ("b/mod.rs", "mod inner;\n"),
        (
            "b/inner.rs",
            "fn g() -> usize { super::super::c::N }\nmod t { fn h() { super::super::helper(); } }\n",
        ),
        // $crate in a macro, a use group, and a root item.
        (
            "c.rs",
            "macro_rules! m { () => { $crate::a::X } }\nuse crate::{d::{Y}, self};\n\
             const N: usize = b'\\'' as usize; fn k() { crate::Thing::new(); }\n",
        ),
        ("d.rs", "pub struct Thing; pub struct Y;\n"),
        // A glob of the root's items.
        ("e.rs", "pub struct Z;\nuse super::*;\n"),
    ]);
    let (graph, _) = scan(dir.path());
    let want: BTreeSet<(String, String)> = [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("c", ROOT),
        ("e", ROOT),
        (ROOT, "d"),
    ]
    .iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    assert_eq!(edges(&graph), want);
    let found = problems(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("a → b → c → a"), "{}", found[0]);
    assert!(
        found[0].contains("src/b/inner.rs:1 (super::super::c::N)"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("src/a.rs:5 (crate::b::codec)"),
        "{}",
        found[0]
    );
}

#[test]
fn the_scan_refuses_imports_of_testkit_but_lets_testkit_import_anything() {
    let dir = synthetic(&[
        (
            "lib.rs",
            "pub mod a;\n#[cfg(feature = \"testkit\")]\npub mod testkit;\n",
        ),
        ("a.rs", "fn f() { let _ = crate::testkit::fake(); }\n"),
        ("testkit/mod.rs", "use crate::a;\nuse super::a as b;\n"),
    ]);
    let (graph, _) = scan(dir.path());
    let found = problems(&graph);
    assert!(
        found
            .iter()
            .any(|p| p.contains("a refers to testkit") && p.contains("src/a.rs:1")),
        "{found:?}"
    );
    // a ↔ testkit is also a cycle; testkit → a alone would be fine.
    let dir = synthetic(&[
        ("lib.rs", "pub mod a;\npub mod testkit;\n"),
        ("a.rs", "pub fn f() {}\n"),
        ("testkit/mod.rs", "use crate::a;\n"),
    ]);
    assert!(problems(&scan(dir.path()).0).is_empty());
}
