//! Every example checks cleanly; the canonical ones are byte-identical to the shared spec.

#[test]
fn every_example_checks() {
    let dir = crate::root().join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("examples") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "mlx") {
            let text = std::fs::read_to_string(&p).expect("read");
            if text.contains("fashion") && !crate::have_fashion(&p.display().to_string()) {
                continue;
            }
            let c = mlx::driver::check_file(&p, &[]);
            let msgs: Vec<String> = c.diags.iter().map(|d| d.to_string()).collect();
            assert!(c.ok(), "{}: {msgs:#?}", p.display());
            n += 1;
        }
    }
    assert!(n >= 3);
}

#[test]
fn canonical_examples_are_verbatim_copies_of_the_spec() {
    // `next/` holds the objectives extension's canonical programs (built: canonical now).
    for folder in ["../shared/spec/examples", "../shared/spec/next"] {
        verbatim(&crate::root().join(folder));
    }
}

fn verbatim(spec: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(spec) else {
        eprintln!(
            "note: {} is not here; skipping the verbatim comparison",
            spec.display()
        );
        return;
    };
    for e in entries {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "mlx") {
            let ours = crate::root()
                .join("examples")
                .join(p.file_name().expect("name"));
            let a = std::fs::read(&p).expect("read spec example");
            let b = std::fs::read(&ours).unwrap_or_default();
            assert!(a == b, "{} differs from {}", ours.display(), p.display());
        }
    }
}

#[test]
fn example_data_matches_the_published_checksums() {
    // sha256 of the shipped data, pinned so a silently different file fails here.
    use sha2::Digest;
    let penguins =
        std::fs::read(crate::root().join("examples/data/penguins.csv")).expect("penguins.csv");
    let hex: String = sha2::Sha256::digest(&penguins)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // DATASETS.md: the PyPI wheel's file, identical to Debian's r-cran copy.
    assert_eq!(
        hex,
        "f204db2c753b0937caac3cb35258562c14f073e4bbc76be24b4c51ce22767a93"
    );
    let diabetes = std::fs::read_to_string(crate::root().join("examples/data/diabetes.csv"))
        .expect("diabetes.csv");
    assert!(diabetes.starts_with("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,progression\n59,2,32.1,101.0,157,93.2,38.0,4.0,4.8598,87,151\n"));
    assert_eq!(diabetes.lines().count(), 443);
}
