//! Repository rules, checked as tests: layering, file headers, and UI case completeness.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn crates_stay_in_their_layers() {
    let src = crate::root().join("src");
    for f in rust_files(&src) {
        let rel = f
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&f).expect("read");
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        if code.contains("pest::") || code.contains("pest_derive") {
            assert!(
                rel.starts_with("syntax/"),
                "{rel}: pest is used only under src/syntax/"
            );
        }
        if code.contains("miette::") {
            assert!(
                rel == "diagnostics.rs" || rel == "main.rs",
                "{rel}: miette is used only in diagnostics.rs and main.rs"
            );
        }
        if code.contains("cranelift") {
            assert!(
                rel.starts_with("backend/cpu/"),
                "{rel}: cranelift is used only under src/backend/cpu/"
            );
        }
        if code.contains("cudarc") {
            assert!(
                rel.starts_with("backend/cuda/"),
                "{rel}: cudarc is used only under src/backend/cuda/"
            );
        }
        if code.contains("axum::") || code.contains("tokio::") {
            assert!(
                rel.starts_with("serve/"),
                "{rel}: the HTTP stack is used only under src/serve/"
            );
        }
        // The run directory's documents are named, read and written only by src/rundir/.
        if !rel.starts_with("rundir/") && !rel.ends_with("tests.rs") && !rel.contains("/tests/") {
            for doc in [
                "\"summary.json\"",
                "\"mlx.lock\"",
                "\"sweep.json\"",
                "\"metrics.jsonl\"",
                "\"input.json\"",
                "\"sources.json\"",
                "\"writer.lock\"",
                "\"preprocess.json\"",
                "\"model.safetensors\"",
            ] {
                assert!(
                    !code.contains(doc),
                    "{rel}: {doc} is read and written through crate::rundir"
                );
            }
        }
        assert!(!code.contains("dbg!("), "{rel}: leftover dbg!");
    }
}

#[test]
fn every_source_file_says_what_it_is() {
    for f in rust_files(&crate::root().join("src")) {
        let text = std::fs::read_to_string(&f).expect("read");
        assert!(
            text.starts_with("//!"),
            "{}: start with a `//!` line saying what the file takes and gives",
            f.display()
        );
    }
}

#[test]
fn every_ui_case_has_its_expected_output() {
    for case in crate::ui::cases() {
        assert!(
            case.with_extension("stderr").exists(),
            "{} has no .stderr",
            case.display()
        );
    }
}
