//! UI tests: each `tests/ui/<area>/<case>.mlx` starts with a header line
//! `// mlx-test: check-fail code=mlx::x::y [code=...] [set=key=value] [memory=BYTES]` (or
//! `check-pass`), and
//! its sibling `.stderr` holds the rendered diagnostics. `MLX_BLESS=1 cargo test` rewrites the
//! `.stderr` files from the current output.

use mlx::diagnostics::{RenderOptions, render};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

struct Header {
    pass: bool,
    codes: BTreeSet<String>,
    sets: Vec<String>,
    /// The machine's memory as the checker sees it (`memory=BYTES`; 16 GB unless given), so
    /// snapshots do not depend on the machine that runs them.
    memory: u64,
}

/// The disk's schemas, with a fixed memory limit.
struct Fixed {
    disk: mlx::driver::DiskSchemas,
    memory: u64,
}

impl mlx::check::SchemaSource for Fixed {
    fn schema(
        &mut self,
        loader: &mlx::check::hir::Loader,
    ) -> Result<std::sync::Arc<mlx::data::schema::Schema>, mlx::data::schema::SchemaError> {
        self.disk.schema(loader)
    }

    fn memory_limit(&mut self) -> Option<u64> {
        Some(self.memory)
    }
}

fn header(text: &str, path: &Path) -> Header {
    let first = text.lines().next().unwrap_or_default();
    let rest = first.strip_prefix("// mlx-test:").unwrap_or_else(|| {
        panic!(
            "{}: the first line must be `// mlx-test: ...`",
            path.display()
        )
    });
    let mut h = Header {
        pass: false,
        codes: BTreeSet::new(),
        sets: Vec::new(),
        memory: 16_000_000_000,
    };
    for word in rest.split_whitespace() {
        match word {
            "check-pass" => h.pass = true,
            "check-fail" => h.pass = false,
            w if w.starts_with("code=") => {
                h.codes.insert(w["code=".len()..].to_string());
            }
            w if w.starts_with("set=") => h.sets.push(w["set=".len()..].to_string()),
            w if w.starts_with("memory=") => {
                h.memory = w["memory=".len()..].parse().expect("memory=BYTES")
            }
            w => panic!("{}: unknown header word `{w}`", path.display()),
        }
    }
    h
}

pub fn cases() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![crate::root().join("tests/ui")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read tests/ui") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "mlx")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('_'))
            {
                // Files starting with `_` are helpers imported by cases.
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn ui_cases_render_their_expected_diagnostics() {
    let bless = std::env::var_os("MLX_BLESS").is_some();
    let root = crate::root();
    let mut failures = Vec::new();
    let cases = cases();
    assert!(
        cases.len() >= 30,
        "expected at least 30 UI cases, found {}",
        cases.len()
    );
    for path in cases {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
        let text = std::fs::read_to_string(&path).expect("read case");
        if text.contains(crate::FASHION) && !crate::have_fashion(&rel.display().to_string()) {
            continue;
        }
        let h = header(&text, &rel);
        let mut schemas = Fixed {
            disk: mlx::driver::DiskSchemas::default(),
            memory: h.memory,
        };
        let checked = mlx::driver::check_file_with(&rel, &h.sets, &mut schemas);
        let opts = RenderOptions {
            color: false,
            width: 100,
        };
        let rendered: String = checked
            .diags
            .iter()
            .map(|d| render(d, &checked.sources, opts))
            .collect();
        let errors: BTreeSet<String> = checked
            .diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.code.to_string())
            .collect();
        if h.pass {
            if !errors.is_empty() {
                failures.push(format!(
                    "{}: expected to pass, got\n{rendered}",
                    rel.display()
                ));
            }
        } else if errors != h.codes {
            failures.push(format!(
                "{}: expected error codes {:?}, got {:?}\n{rendered}",
                rel.display(),
                h.codes,
                errors
            ));
        }
        assert!(
            !checked.diags.iter().any(|d| d.is_internal()),
            "{}: internal error\n{rendered}",
            rel.display()
        );
        let expected_path = path.with_extension("stderr");
        if bless {
            std::fs::write(&expected_path, &rendered).expect("write .stderr");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == rendered => {}
            Ok(expected) => failures.push(format!(
                "{}: output differs from {}\n--- expected\n{expected}\n--- actual\n{rendered}",
                rel.display(),
                expected_path.display()
            )),
            Err(_) => failures.push(format!(
                "{}: no {} (run `MLX_BLESS=1 cargo test` to create it)",
                rel.display(),
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} UI case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
