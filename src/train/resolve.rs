//! The resolved program of a run (`spec.mlx`): the user's files inlined in canonical form,
//! constants with `--set` applied, data paths made absolute (so the run directory can be
//! re-checked on its own), and each train written out with every setting resolved and every
//! default filled in. Its text is what the lock file hashes: reformatting a file or editing a
//! comment leaves it unchanged; any change of meaning changes it.

use crate::check::Override;
use crate::check::hir::TrainPlan;
use crate::source::SourceMap;
use crate::syntax::ast::{self, DatasetEntry, ExprKind, Item, UseTarget};
use crate::syntax::print;
use std::fmt::Write;
use std::path::Path;

pub fn spec_text(
    sources: &SourceMap,
    modules: &[ast::Module],
    overrides: &[Override],
    trains: &[&TrainPlan],
) -> String {
    let mut out = String::from(
        "// The resolved program of this run: imports inlined, --set applied, defaults filled in.\n",
    );
    let mut uses: Vec<String> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    for m in modules {
        let file = sources.get(m.file);
        if file.is_stdlib() {
            continue;
        }
        let dir = file.dir().map(Path::to_path_buf);
        for item in &m.items {
            match item {
                Item::Use(u) => {
                    if let UseTarget::Module(p) = &u.target {
                        let name: Vec<&str> = p.iter().map(|i| i.name.as_str()).collect();
                        let line = format!("use {}", name.join("."));
                        if !uses.contains(&line) {
                            uses.push(line);
                        }
                    }
                }
                Item::Const(c) => {
                    let mut c = c.clone();
                    if let Some(o) = overrides
                        .iter()
                        .rev()
                        .find(|o| o.path.len() == 1 && o.path[0] == c.name.name)
                    {
                        c.value = o.value.clone();
                    }
                    let mut s = String::new();
                    print::item(&mut s, &Item::Const(c));
                    items.push(s);
                }
                Item::Dataset(d) => {
                    let mut d = d.clone();
                    absolutize(&mut d, dir.as_deref());
                    let mut s = String::new();
                    print::item(&mut s, &Item::Dataset(d));
                    items.push(s);
                }
                Item::Model(_) => {
                    let mut s = String::new();
                    print::item(&mut s, item);
                    items.push(s);
                }
                Item::Train(_) | Item::Sweep(_) => {}
            }
        }
    }
    for u in &uses {
        let _ = writeln!(out, "{u}");
    }
    for i in items {
        out.push('\n');
        out.push_str(&i);
        out.push('\n');
    }
    for t in trains {
        out.push('\n');
        out.push_str(&train_text(t));
    }
    out
}

/// A train block with every resolved entry.
pub fn train_text(t: &TrainPlan) -> String {
    let mut s = format!("train {} {{\n", t.name);
    for (k, v) in &t.resolved {
        let _ = writeln!(s, "  {k} = {v}");
    }
    s.push_str(&t.blocks);
    s.push_str("}\n");
    s
}

/// Make the data paths of a dataset's sources absolute.
fn absolutize(d: &mut ast::Dataset, dir: Option<&Path>) {
    for e in &mut d.entries {
        let DatasetEntry::Source { value, .. } = e else {
            continue;
        };
        let ExprKind::Call { callee, args } = &mut value.kind else {
            continue;
        };
        let path_args: &[&str] = match callee.as_name().map(|n| n.name.as_str()) {
            Some("csv") | Some("parquet") => &["path"],
            Some("idx") => &["images", "labels"],
            Some("sql") => &["url"],
            _ => continue,
        };
        let mut positional = 0;
        for a in args.iter_mut() {
            let key = match &a.name {
                Some(n) => n.name.clone(),
                None => {
                    positional += 1;
                    path_args
                        .get(positional - 1)
                        .map_or_else(String::new, |s| s.to_string())
                }
            };
            if !path_args.contains(&key.as_str()) {
                continue;
            }
            if let ExprKind::Str(p) = &mut a.value.kind {
                // `sql`: only the file of a `sqlite:` URL is a path.
                if key == "url" {
                    if let Some(f) = crate::data::sources::sqlite_path(p) {
                        let path = Path::new(f);
                        if path.is_relative() {
                            let joined = dir.map_or_else(|| path.to_path_buf(), |d| d.join(path));
                            let abs = std::fs::canonicalize(&joined).unwrap_or(joined);
                            *p = format!("sqlite:{}", abs.display());
                        }
                    }
                    continue;
                }
                let path = Path::new(p.as_str());
                if path.is_relative() {
                    let joined = dir.map_or_else(|| path.to_path_buf(), |d| d.join(path));
                    let abs = std::fs::canonicalize(&joined).unwrap_or(joined);
                    *p = abs.display().to_string();
                }
            }
        }
    }
}
