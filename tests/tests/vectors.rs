//! Runs the shared vectors through `Engine::call`.

use yilian_core::Engine;

#[test]
fn shared_vectors() {
    let files = yilian_tests::vector_files();
    assert!(!files.is_empty(), "no vectors found in {}", yilian_tests::vectors_dir().display());
    let (mut cases, mut steps, mut failures) = (0, 0, Vec::new());
    for (name, file) in &files {
        for case in file["cases"].as_array().expect("cases array") {
            let mut open = |cfg: &str| -> yilian_tests::Caller {
                let e = Engine::open(cfg).expect("vector config opens");
                Box::new(move |c: &str, r: &str| e.call(c, r))
            };
            match yilian_tests::run_case(file.get("config"), case, &mut open) {
                Ok(n) => {
                    cases += 1;
                    steps += n;
                }
                Err(e) => failures.push(format!("{name} / {}: {e}", case["name"])),
            }
        }
    }
    println!("vectors: {} files, {cases} cases, {steps} steps passed", files.len());
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
    assert!(cases > 0);
}
