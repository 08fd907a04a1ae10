//! Thousands of mutated and truncated versions of the examples go through parse + check:
//! none may panic or produce an internal error; every failure is an ordinary diagnostic.

use mlx::driver::DiskSchemas;
use mlx::rng::Rng;
use std::path::{Path, PathBuf};

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "=",
    "|>",
    "@",
    "+",
    "-",
    "*",
    "/",
    "...",
    "\"",
    "->",
    ".",
    "|",
    "0",
    "1",
    "-1",
    "1e400",
    "99999999999999999999",
    "0.0",
    "x",
    "B",
    "model",
    "train",
    "dataset",
    "sweep",
    "use",
    "const",
    "let",
    "param",
    "features",
    "target",
    "source",
    "grid",
    "random",
    "in",
    "Float",
    "Class",
    "Float[B]",
    "Class[0]",
    "dense",
    "conv2d",
    "relu",
    "scan",
    "flatten",
    "zeros",
    "ones",
    "\n",
    " ",
    "//",
    "true",
    "é",
    "\u{0}",
];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut s: Vec<char> = text.chars().collect();
    let edits = 1 + rng.below(3);
    for _ in 0..edits {
        let n = s.len().max(1) as u64;
        match rng.below(6) {
            0 => {
                // Truncate.
                let at = rng.below(n) as usize;
                s.truncate(at);
            }
            1 => {
                // Delete a range.
                let a = rng.below(n) as usize;
                let b = (a + 1 + rng.below(12) as usize).min(s.len());
                if a < b {
                    s.drain(a..b);
                }
            }
            2 | 3 => {
                // Insert a token.
                let at = rng.below(n) as usize;
                let tok = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                let at = at.min(s.len());
                for (i, c) in tok.chars().enumerate() {
                    s.insert(at + i, c);
                }
            }
            4 => {
                // Replace a character.
                if !s.is_empty() {
                    let at = rng.below(n) as usize % s.len();
                    let tok = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                    s[at] = tok.chars().next().unwrap_or('x');
                }
            }
            _ => {
                // Duplicate or drop a line.
                let text: String = s.iter().collect();
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let i = rng.below(lines.len() as u64) as usize;
                    if rng.below(2) == 0 {
                        let l = lines[i];
                        lines.insert(i, l);
                    } else {
                        lines.remove(i);
                    }
                }
                s = lines.join("\n").chars().collect();
            }
        }
    }
    s.into_iter().collect()
}

/// A scratch copy of the examples (with their data) that mutants can sit beside.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mlx-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let ex = crate::root().join("examples");
    for e in std::fs::read_dir(&ex).expect("examples") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "mlx") {
            std::fs::copy(&p, dir.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    let data = dir.join("data");
    if !data.exists() {
        #[cfg(unix)]
        std::os::unix::fs::symlink(ex.join("data"), &data).expect("link data");
    }
    dir
}

fn check_never_panics(path: &Path, schemas: &mut DiskSchemas) -> Result<(), String> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let c = mlx::driver::check_file_with(path, &[], schemas);
        let opts = mlx::diagnostics::RenderOptions {
            color: false,
            width: 80,
        };
        for d in &c.diags {
            // Rendering must not panic either.
            let _ = mlx::diagnostics::render(d, &c.sources, opts);
            if d.is_internal() {
                return Err(format!("internal error: {d}"));
            }
        }
        if c.program.is_none() && !mlx::diagnostics::has_errors(&c.diags) {
            return Err("no program and no error".to_string());
        }
        Ok(())
    }));
    match result {
        Ok(r) => r,
        Err(_) => Err("panicked".to_string()),
    }
}

#[test]
fn thousands_of_mutants_end_in_diagnostics_never_panics() {
    let dir = scratch();
    let sources: Vec<(String, String)> = [
        "penguins.mlx",
        "diabetes.mlx",
        "fashion_lenet.mlx",
        "fashion_lstm.mlx",
        "penguins_sweep.mlx",
        "fashion_mlp.mlx",
    ]
    .iter()
    .map(|f| {
        (
            f.to_string(),
            std::fs::read_to_string(dir.join(f)).expect("example"),
        )
    })
    .collect();
    let mut stdlib = mlx::stdlib::source("std.nn").expect("std.nn").to_string();
    stdlib.push_str(
        "\ntrain t { model = lstm(4) data = d loss = mse optimizer = sgd(lr: 1) epochs = 1 }\n",
    );
    let mut rng = Rng::new(2024, "fuzz");
    let mut schemas = DiskSchemas::default();
    let per_file = 500;
    let mut failures = Vec::new();
    let mut failing_mutants = 0;
    for (name, text) in sources
        .iter()
        .chain(std::iter::once(&("stdlib.mlx".to_string(), stdlib)))
    {
        for i in 0..per_file {
            let m = mutate(text, &mut rng);
            // Mutants of a file imported by others are written under its own name in turn, so
            // importing files see them too.
            let path = dir.join(format!("mutant-{i}-{name}"));
            std::fs::write(&path, &m).expect("write mutant");
            if let Err(e) = check_never_panics(&path, &mut schemas) {
                failures.push(format!("{e}\n--- mutant of {name}:\n{m}"));
            }
            failing_mutants += 1;
            let _ = std::fs::remove_file(&path);
        }
    }
    assert!(failing_mutants >= 3000);
    assert!(
        failures.is_empty(),
        "{} mutants broke the checker:\n{}",
        failures.len(),
        failures
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// Programs built to be deep or long, each run through the real binary: `mlx check` must end
/// with status 0 or 1 (a diagnostic), never a crash, an internal error (2) or a signal.
fn generated() -> Vec<(&'static str, String)> {
    let nn = "use std.nn\n";
    let model =
        |body: &str| format!("{nn}model m(x: Float[B, 4]) -> Float[B, 4] {{\n  {body}\n}}\n");
    // Long chains are spread over lines, as a person or a generator would write them.
    let chain = |head: &str, op: &str, n: usize| {
        let mut s = head.to_string();
        for i in 0..n {
            s.push_str(op);
            if i % 20 == 19 {
                s.push_str("\n    ");
            }
        }
        s
    };
    let parens = |n: usize, inner: &str| format!("{}{inner}{}", "(".repeat(n), ")".repeat(n));
    vec![
        (
            "parens 100,000",
            format!("const c = {}\n", parens(100_000, "1")),
        ),
        ("parens 3,000", format!("const c = {}\n", parens(3000, "1"))),
        ("parens 200", format!("const c = {}\n", parens(200, "1"))),
        ("model parens 3,000", model(&parens(3000, "x"))),
        (
            "brackets 5,000",
            format!("const c = {}1{}\n", "[".repeat(5000), "]".repeat(5000)),
        ),
        (
            "braces 5,000",
            format!(
                "model m(x: Float[B, 4]) {}x{}\n",
                "{".repeat(5000),
                "}".repeat(5000)
            ),
        ),
        (
            "minus 100,000",
            format!("const c = {}1\n", "-".repeat(100_000)),
        ),
        (
            "minus signs 100,000",
            format!("const c = {}1\n", "- ".repeat(100_000)),
        ),
        (
            "negated parens 3,000",
            format!("const c = {}1{}\n", "-(".repeat(3000), ")".repeat(3000)),
        ),
        (
            "type dims 3,000",
            format!("model m(x: Float[B, {}]) {{ x }}\n", parens(3000, "4")),
        ),
        ("pipeline 10,000", model(&chain("x", " |> relu", 10_000))),
        ("pipeline 30,000", model(&chain("x", " |> relu", 30_000))),
        ("tensor sum 5,000", model(&chain("x", " + x", 5000))),
        (
            "sum 5,000",
            format!("const c = {}\n", chain("1", " + 1", 5000)),
        ),
        (
            "sum 100,000",
            format!("const c = {}\n", chain("1", " + 1", 100_000)),
        ),
        (
            "product 20,000",
            format!("const c = {}\n", chain("1", " * 1", 20_000)),
        ),
        ("calls 10,000", model(&chain("relu", "(x)", 10_000))),
        (
            "fields 10,000",
            format!("const c = {}\n", chain("a", ".b", 10_000)),
        ),
        (
            "list of 50,000",
            format!("const c = [{}]\n", chain("1", ", 1", 50_000)),
        ),
        (
            "consts 5,000",
            (1..=5000).fold("const c0 = 1\n".to_string(), |s, i| {
                s + &format!("const c{i} = c{} + 1\n", i - 1)
            }),
        ),
        (
            "consts backwards 50,000",
            (0..50_000).fold(String::new(), |s, i| {
                s + &format!("const c{i} = c{} + 1\n", i + 1)
            }) + "const c50000 = 1\n",
        ),
        ("huge int", model("x |> dense(99999999999999999999)")),
        (
            "huge width",
            model("x |> dense(4611686018427387904) |> dense(4)"),
        ),
        (
            "huge type",
            format!(
                "{nn}model m(x: Float[B, 9223372036854775807]) -> Float[B, 4] {{ x |> dense(4) }}\n"
            ),
        ),
        (
            "huge product",
            model("x |> dense(3037000500) |> dense(3037000500) |> dense(4)"),
        ),
        ("huge float", "const c = 1e400\n".to_string()),
    ]
}

#[test]
fn deep_and_long_programs_end_in_diagnostics_never_crash() {
    let dir = std::env::temp_dir().join(format!("mlx-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut failures = Vec::new();
    for (i, (what, text)) in generated().into_iter().enumerate() {
        let path = dir.join(format!("deep-{i}.mlx"));
        std::fs::write(&path, &text).expect("write program");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlx"))
            .arg("check")
            .arg(&path)
            .output()
            .expect("run mlx");
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0 | 1) if !err.contains("mlx::internal") => {}
            code => failures.push(format!(
                "{what}: status {code:?}\n{}",
                err.chars().take(2000).collect::<String>()
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
