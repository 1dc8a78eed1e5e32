//! Runs the shared vectors through `Engine::call`.

use yilian_core::Engine;

#[test]
fn shared_vectors() {
    let mut open = |cfg: &str| -> yilian_tests::Caller {
        let e = Engine::open(cfg).expect("vector config opens");
        Box::new(move |p: Option<&str>, c: &str, r: &str| match p {
            Some(p) => e.call_as_json(p, c, r),
            None => e.call(c, r),
        })
    };
    let (cases, steps, failures) = yilian_tests::run_all(&mut open, &|_, _| true);
    println!("vectors: {} files, {cases} cases, {steps} steps passed", yilian_tests::vector_files().len());
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
    assert!(cases > 0);
}
