//! The lock through the binary: its hashes follow meaning, not layout.

use crate::run::{json, out_dir, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The penguins example and its data, copied into `dir` (as `penguins.mlx`, or with `edit`
/// applied to the text), so tests can change them without touching `examples/`.
fn copy_penguins(dir: &Path, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let data = dir.join("data/penguins.csv");
    if !data.exists() {
        std::fs::copy(crate::root().join("examples/data/penguins.csv"), &data).unwrap();
    }
    let text = std::fs::read_to_string(crate::root().join("examples/penguins.mlx")).unwrap();
    let edited = edit(&text);
    let p = dir.join(name);
    std::fs::write(&p, edited).unwrap();
    p
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` is not in the example");
    text.replacen(from, to, 1)
}

fn lock_of(file: &Path, out: &Path) -> Value {
    let (o, dir) = run(
        &[file.to_str().unwrap(), "--set", "epochs=1", "--no-plot"],
        out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    json(&dir.unwrap().join("mlx.lock"))
}

#[test]
fn the_lock_hashes_meaning_not_layout() {
    let work = out_dir("lock");
    let out = work.join("runs");
    let original = copy_penguins(&work, "a.mlx", str::to_string);
    let reformatted = copy_penguins(&work, "b.mlx", |t| {
        let t = replace(
            t,
            "model      = classifier(hidden: 32)",
            "model = classifier( hidden : 32 )   // same",
        );
        let t = replace(&t, "use std.nn\n", "use std.nn\n\n\n// a new comment\n");
        replace(
            &t,
            "  x |> dense(hidden) |> relu",
            "  x\n    |> dense(hidden)   // first layer\n    |> relu",
        )
    });
    let lr = copy_penguins(&work, "c.mlx", |t| {
        replace(t, "adam(lr: 0.01)", "adam(lr: 0.02)")
    });
    let width = copy_penguins(&work, "d.mlx", |t| {
        replace(t, "classifier(hidden: 32)", "classifier(hidden: 48)")
    });
    let a = lock_of(&original, &out);
    assert!(a["program"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(a["seed"], 7);
    assert_eq!(a["mlx"], env!("CARGO_PKG_VERSION"));
    let data = &a["data"][0];
    assert!(Path::new(data["path"].as_str().unwrap()).is_absolute());
    let b = lock_of(&reformatted, &out);
    assert_eq!(a, b, "layout and comments must not change the lock");
    let c = lock_of(&lr, &out);
    assert_ne!(a["program"], c["program"], "a learning rate is meaning");
    assert_eq!(a["data"], c["data"]);
    let d = lock_of(&width, &out);
    assert_ne!(a["program"], d["program"], "a layer width is meaning");
    assert_ne!(c["program"], d["program"]);
    // One byte of the data file: the same program, that file's hash changed.
    let csv = work.join("data/penguins.csv");
    let mut bytes = std::fs::read(&csv).unwrap();
    let at = bytes.iter().position(|b| *b == b'3').unwrap();
    bytes[at] = b'4';
    std::fs::write(&csv, &bytes).unwrap();
    let e = lock_of(&original, &out);
    assert_eq!(a["program"], e["program"]);
    assert_eq!(a["data"][0]["path"], e["data"][0]["path"]);
    assert_ne!(a["data"][0]["sha256"], e["data"][0]["sha256"]);
}
