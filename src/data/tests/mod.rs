//! Tests of the data pipeline on the real example data (penguins, diabetes, Fashion-MNIST when
//! installed) and on small hand-made plans: shared helpers here, cases in the submodules.

mod errors;
mod fashion;
mod fitting;
mod splits;
mod streaming;

use crate::check::hir::{
    ColumnKind, DatasetPlan, FeaturePlan, Loader, SourcePlan, SourceRole, Split, Step, TargetKind,
    TargetPlan,
};
use crate::source::Span;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(super) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first dataset plan of an example program, checked by the real checker.
pub(super) fn example_plan(file: &str) -> DatasetPlan {
    let checked = crate::driver::check_file(&root().join("examples").join(file), &[]);
    assert!(checked.ok(), "{file} does not check: {:?}", checked.diags);
    checked.program.unwrap().datasets.remove(0)
}

/// The fields of every line of a simple CSV file (no quotes), keyed by 1-based line number:
/// an independent reading of the data to compare against.
pub(super) fn raw_lines(path: &Path) -> HashMap<usize, Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split(',').map(str::to_string).collect()))
        .collect()
}

/// A fresh scratch directory for one test.
pub(super) fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mlx-data-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(super) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub(super) fn csv_source(role: SourceRole, path: &Path, missing: &[&str]) -> SourcePlan {
    SourcePlan {
        role,
        loader: Loader::Csv {
            path: path.to_path_buf(),
            missing: missing.iter().map(|s| s.to_string()).collect(),
            sep: ',',
        },
        span: Span::default(),
    }
}

pub(super) fn numeric(column: &str, steps: Vec<Step>) -> FeaturePlan {
    FeaturePlan {
        column: column.into(),
        kind: ColumnKind::Numeric,
        steps,
        width: 1,
        span: Span::default(),
    }
}

pub(super) fn category(column: &str, levels: &[&str], steps: Vec<Step>) -> FeaturePlan {
    let one_hot = steps.contains(&Step::OneHot);
    FeaturePlan {
        column: column.into(),
        kind: ColumnKind::Category {
            levels: levels.iter().map(|s| s.to_string()).collect(),
        },
        steps,
        width: if one_hot { levels.len() } else { 1 },
        span: Span::default(),
    }
}

/// A hand-made plan over one CSV file with a text class target `y` of classes `a`, `b`.
pub(super) fn small_plan(path: &Path, features: Vec<FeaturePlan>, split: Split) -> DatasetPlan {
    let width = features.iter().map(|f| f.width).sum();
    DatasetPlan {
        name: "small".into(),
        span: Span::default(),
        sources: vec![csv_source(SourceRole::All, path, &["NA"])],
        dedup: false,
        stream: None,
        split,
        features,
        target: TargetPlan {
            column: "y".into(),
            kind: TargetKind::Class {
                classes: 2,
                levels: vec!["a".into(), "b".into()],
                numeric: false,
            },
            drop_missing: false,
            span: Span::default(),
        },
        feature_shape: vec![width],
    }
}

pub(super) fn no_split() -> Split {
    Split::None
}
