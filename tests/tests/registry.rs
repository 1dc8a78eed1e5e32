//! Every command in the registry has a shared vector and an entry in the
//! docs: a command added without either fails here, in every language's
//! suite's place (the vectors are what every binding runs).

use std::collections::BTreeSet;
use yilian_core::Engine;

/// `name` as a whole command name in `text` (not inside a longer name).
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        !part(before) && !part(after)
    })
}

#[test]
fn every_registered_command_has_a_vector_and_an_entry_in_the_docs() {
    let mut in_vectors = BTreeSet::new();
    for (_, v) in yilian_tests::vector_files() {
        for case in v["cases"].as_array().unwrap() {
            for step in case["steps"].as_array().unwrap() {
                in_vectors.insert(step["command"].as_str().unwrap().to_string());
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut docs = std::fs::read_to_string(root.join("README.md")).unwrap();
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            docs.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    let no_vector: Vec<&str> = Engine::commands().iter().copied().filter(|c| !in_vectors.contains(*c)).collect();
    let no_docs: Vec<&str> = Engine::commands().iter().copied().filter(|c| !mentions(&docs, c)).collect();
    assert!(no_vector.is_empty(), "commands without a shared vector (tests/vectors): {no_vector:?}");
    assert!(no_docs.is_empty(), "commands the README and docs/ never name: {no_docs:?}");
    assert!(Engine::commands().len() > 100);
}
