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
        // Layers: back ends run IR and never see the language; data never runs a model;
        // only the command line (main.rs, through the library) reaches `commands`.
        let is_test = rel.ends_with("tests.rs") || rel.contains("/tests/");
        let uses = |m: &str| {
            code.contains(&format!("crate::{m}")) || code.contains(&format!("super::super::{m}"))
        };
        if rel.starts_with("backend/") && !is_test {
            for m in ["check", "syntax", "driver", "data", "train"] {
                assert!(!uses(m), "{rel}: a back end imports crate::{m}");
            }
        }
        if rel.starts_with("data/") && !is_test {
            for m in ["backend", "ir", "train", "serve", "predict"] {
                assert!(!uses(m), "{rel}: the data layer imports crate::{m}");
            }
        }
        if rel.starts_with("check/") || rel.starts_with("syntax/") {
            for m in ["backend", "train", "serve", "predict", "rundir"] {
                assert!(
                    is_test || !uses(m),
                    "{rel}: the language layer imports crate::{m}"
                );
            }
        }
        if rel != "commands.rs" && rel != "main.rs" && !is_test {
            assert!(
                !uses("commands"),
                "{rel}: only the command line imports crate::commands"
            );
        }
    }
}

/// Every `mlx::area::name` code in the source, with the files that raise it.
fn source_codes() -> std::collections::BTreeMap<String, Vec<String>> {
    let src = crate::root().join("src");
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in rust_files(&src) {
        if is_test_file(&f) {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        for code in quoted_codes(&text) {
            out.entry(code)
                .or_default()
                .push(f.strip_prefix(&src).unwrap().display().to_string());
        }
    }
    out
}

/// A unit-test file inside `src/` (`tests.rs`, or under a `tests/` directory).
fn is_test_file(f: &Path) -> bool {
    f.ends_with("tests.rs")
        || f.components().any(|c| c.as_os_str() == "tests")
            && f.components().any(|c| c.as_os_str() == "src")
}

/// `"mlx::a::b"` string literals in `text`.
fn quoted_codes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in text.split("\"mlx::").skip(1) {
        let end = part.find('"').unwrap_or(0);
        let code = &part[..end];
        if code.split("::").count() == 2
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == ':')
        {
            out.push(format!("mlx::{code}"));
        }
    }
    out
}

/// Codes raised only when the machine fails the program (a full disk, a thread that cannot
/// start, a plot library error): no test can provoke them portably.
const UNPROVOKED: &[(&str, &str)] = &[
    (
        "mlx::runtime::error",
        "a thread or runtime that cannot start",
    ),
    (
        "mlx::run::io",
        "a write that fails (a full disk; permissions do not bind root in CI)",
    ),
    ("mlx::plot::failed", "the plotting library failing to draw"),
    ("mlx::explain::write", "a write that fails"),
    ("mlx::monitor::write", "a write that fails"),
    ("mlx::export::write", "a write that fails"),
];

#[test]
fn every_diagnostic_code_is_documented_and_tested() {
    let codes = source_codes();
    let arch = std::fs::read_to_string(crate::root().join("ARCHITECTURE.md")).expect("read");
    let mut tested = String::new();
    // Unit tests inside src/ assert codes too.
    for f in rust_files(&crate::root().join("src")) {
        if is_test_file(&f) {
            tested.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
        }
    }
    for dir in ["tests/ui", "tests/it"] {
        let mut dirs = vec![crate::root().join(dir)];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "mlx" || x == "rs")
                    && !p.ends_with("tidy.rs")
                {
                    tested.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                }
            }
        }
    }
    let mut problems = Vec::new();
    for (code, files) in &codes {
        let at = files.join(", ");
        if !arch.contains(&format!("`{code}`")) {
            problems.push(format!(
                "{code} ({at}) is not in ARCHITECTURE.md's list of codes"
            ));
        }
        let pinned = tested.contains(&format!("code={code}"))
            || tested.contains(&format!("\"{code}\""))
            || tested.contains(&format!("{code}\")"))
            || tested.contains(&format!("contains(\"{code}"));
        if !pinned && !UNPROVOKED.iter().any(|(c, _)| c == code) {
            problems.push(format!(
                "{code} ({at}) is asserted by no ui case (`code={code}`) and no integration test"
            ));
        }
    }
    for (c, _) in UNPROVOKED {
        assert!(
            codes.contains_key(*c),
            "{c} is listed as unprovoked but raised nowhere"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
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

/// The checker's mistakes are data (`check::error`): only `src/check/error/` turns them into
/// `Diagnostic`s and suggests names ("did you mean"), so every other checker file reports an
/// `Error` variant through `Checker::fail`.
#[test]
fn the_checker_builds_diagnostics_only_from_its_errors() {
    let check = crate::root().join("src/check");
    let mut found = Vec::new();
    for f in rust_files(&check) {
        if f.starts_with(check.join("error")) || is_test_file(&f) {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read source");
        for (i, line) in text.lines().enumerate() {
            let built = [
                "Diagnostic::error(",
                "Diagnostic::warning(",
                ".suggest(",
                ".suggest_or(",
                "did_you_mean(",
            ];
            if built.iter().any(|b| line.contains(b)) {
                found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "diagnostics built outside src/check/error/ (add a variant to check::error and report it with Checker::fail):\n{}",
        found.join("\n")
    );
}
