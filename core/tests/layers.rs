//! The layering of `core/src`, checked from the source: a module may name
//! (`crate::x`, or `super::x` from a top-level file) only modules of a lower
//! layer, so there are no import cycles and the tree reads from the outside
//! in. A new module must be placed here; an upward edge fails with the file
//! that makes it. (Test modules, `#[cfg(test)] mod tests`, may name anything.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom. The README's architecture section shows the same table.
const LAYERS: &[&[&str]] = &[
    &["engine"],
    // Every domain's command table, collected once; dispatch and the permission check.
    &["registry"],
    // The assistant's quick menus: forms from the catalogue, the pool and the
    // domains' queries; submissions through the dispatcher the registry hands it.
    &["assistant"],
    // The monitoring indicators: counted from every domain's records.
    &["indicators"],
    // What is due without a caller: one list, run by the timer or `run-due`.
    &["due"],
    // Transactions on an upstream hospital's slots, handed to it.
    &["upstream"],
    // What an engine owns: the pool and each domain's state.
    &["domains"],
    // The platform client: calls another engine over HTTP (knows the commands' kinds).
    &["client"],
    // The domains' commands; hand-offs as records.
    &["commands", "lab", "referral", "handoff"],
    // The chronic-disease centre: below the referral module, whose case steps make its follow-up plans.
    &["schedule", "stats", "chronic"],
    // What callers read: slot, booking, event views and the one "expired" rule.
    &["views"],
    // The slot pool and its change context.
    &["pool"],
    &["command", "request", "config", "audit", "nonce"],
    &["model", "store", "monitor", "machine"],
    // A command's answer on its way out: a `Value`, or text written from a view.
    &["reply"],
    &["principal", "identity", "clock", "crypto", "audit_chain", "catalog", "render", "text", "panic"],
    // Short texts on the stack (a view's timestamps and ids).
    &["short"],
    &["error"],
];

/// Modules that must stay below every domain: they name none.
const DOMAIN_FREE: &[&str] = &["store", "command", "request", "audit", "audit_chain", "nonce", "views", "pool", "reply"];
const DOMAINS: &[&str] =
    &["assistant", "indicators", "commands", "lab", "referral", "client", "schedule", "stats", "domains", "registry", "engine", "due", "upstream", "handoff", "chronic"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The identifiers following `prefix` in `text`.
fn names_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut v = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        // Not the tail of a longer path such as `yilian_crate::`.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        v.push(&rest[..end]);
    }
    v
}

/// module → the modules it names, with one file that names each.
fn edges() -> BTreeMap<String, BTreeMap<String, String>> {
    let root = src();
    let mut files = Vec::new();
    rs_files(&root, &mut files);
    let mods: BTreeSet<String> = files
        .iter()
        .filter_map(|p| p.strip_prefix(&root).ok())
        .map(|r| r.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string())
        .filter(|m| m != "lib")
        .collect();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for p in &files {
        let rel = p.strip_prefix(&root).unwrap();
        let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let module = parts[0].trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let mut text = std::fs::read_to_string(p).unwrap();
        if let Some(i) = text.find("#[cfg(test)]\nmod tests") {
            text.truncate(i);
        }
        let mut named = names_after(&text, "crate::");
        if parts.len() == 1 {
            named.extend(names_after(&text, "super::"));
        }
        for n in named {
            if n != module && mods.contains(n) {
                out.entry(module.clone()).or_default().entry(n.to_string()).or_insert_with(|| rel.display().to_string());
            }
        }
        out.entry(module).or_default();
    }
    out
}

fn layer_of(m: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&m))
}

#[test]
fn every_module_of_core_src_has_a_layer() {
    let unplaced: Vec<String> = edges().into_keys().filter(|m| layer_of(m).is_none()).collect();
    assert!(unplaced.is_empty(), "place these modules in LAYERS (tests/layers.rs) and the README: {unplaced:?}");
}

#[test]
fn a_module_names_only_modules_below_it() {
    let mut upward = Vec::new();
    for (m, to) in edges() {
        let Some(lm) = layer_of(&m) else { continue };
        for (t, file) in to {
            if layer_of(&t).is_some_and(|lt| lt <= lm) {
                upward.push(format!("{m} → {t} (in {file})"));
            }
        }
    }
    assert!(upward.is_empty(), "edges to the same or a higher layer:\n{}", upward.join("\n"));
}

#[test]
fn there_are_no_import_cycles() {
    // Implied by the layers, checked on its own so a cycle is named as one.
    let g = edges();
    fn visit(m: &str, g: &BTreeMap<String, BTreeMap<String, String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            return Some(path[i..].to_vec());
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for t in g.get(m).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(t, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(cycle) = visit(m, &g, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_store_the_change_context_and_the_views_name_no_domain() {
    let g = edges();
    for m in DOMAIN_FREE {
        let named: Vec<&String> = g[*m].keys().filter(|t| DOMAINS.contains(&t.as_str())).collect();
        assert!(named.is_empty(), "{m} names {named:?}");
    }
}

#[test]
fn the_checker_sees_an_edge_it_is_shown() {
    // A checker that read nothing would pass every test above.
    let g = edges();
    assert!(g["registry"].contains_key("domains") && g["pool"].contains_key("store") && g["views"].contains_key("pool"));
    assert_eq!(names_after("use crate::pool::Pool; x::crate::no; my_crate::lab", "crate::"), vec!["pool"]);
}
