//! Streamed datasets against the in-memory pipeline: the statistics fitted in passes equal
//! those fitted in memory on the same training rows; the split is a function of each row's
//! text; chunks carry category levels and report bad data at its line.

use super::*;
use crate::check::hir::StreamPlan;
use crate::data::Data;
use crate::data::preprocess::Preprocessor;
use crate::data::stream::{self, Part};
use std::collections::BTreeSet;

/// The lines (of the plan's one CSV source) of each part of a streamed split.
fn lines_by_part(plan: &DatasetPlan, seed: u64) -> [BTreeSet<usize>; 3] {
    let mut out: [BTreeSet<usize>; 3] = Default::default();
    stream::visit(plan, seed, |data, _, parts| {
        for (r, p) in parts.iter().enumerate() {
            let i = match p {
                Part::Train => 0,
                Part::Val => 1,
                Part::Test => 2,
            };
            out[i].insert(data.origin(r).1);
        }
        Ok(())
    })
    .unwrap();
    out
}

/// The in-memory fit on the rows a stream puts in training, taken in file order.
fn fit_in_memory(plan: &DatasetPlan, seed: u64) -> Preprocessor {
    let [train, _, _] = lines_by_part(plan, seed);
    let mut whole = plan.clone();
    whole.stream = None;
    let data = Data::load(&whole).unwrap();
    let rows: Vec<usize> = (0..data.len())
        .filter(|r| train.contains(&data.origin(*r).1))
        .collect();
    assert_eq!(rows.len(), train.len());
    Preprocessor::fit(&whole, &data, &rows).unwrap()
}

fn streamed(mut plan: DatasetPlan) -> DatasetPlan {
    plan.dedup = false;
    plan.stream = Some(StreamPlan { buffer: Some(64) });
    plan.split = Split::Random {
        train: 0.6,
        val: 0.2,
        test: 0.2,
        stratify: false,
    };
    plan
}

#[test]
fn penguins_statistics_fitted_in_passes_equal_the_in_memory_fit() {
    // Medians, a winsorized range, means, standard deviations, a mode, one-hot levels.
    let plan = streamed(example_plan("penguins.mlx"));
    for seed in [7, 8] {
        let fitted = stream::fit(&plan, seed).unwrap();
        assert_eq!(fitted.pre, fit_in_memory(&plan, seed), "seed {seed}");
        let [tr, va, te] = lines_by_part(&plan, seed);
        assert_eq!(fitted.counts.train, tr.len());
        assert_eq!(fitted.counts.val, va.len());
        assert_eq!(fitted.counts.test, te.len());
        assert_eq!(tr.len() + va.len() + te.len(), 344);
        assert!((180..240).contains(&tr.len()), "{} training rows", tr.len());
    }
}

#[test]
fn every_streamed_step_fits_as_in_memory() {
    let dir = scratch("stream-steps");
    let mut text = String::from("x,z,c,y\n");
    let mut rng = crate::rng::Rng::new(3, "t");
    for i in 0..3000 {
        let x = if i % 17 == 0 {
            "NA".to_string()
        } else {
            format!("{:.3}", rng.next_f64() * 40.0 - 5.0)
        };
        let z = format!("{}", (rng.next_f64() * 9.0).floor());
        let c = ["red", "green", "blue", "NA"][(rng.below(4)) as usize];
        text.push_str(&format!(
            "{x},{z},{c},{}\n",
            if i % 3 == 0 { "a" } else { "b" }
        ));
    }
    let path = write(&dir, "d.csv", &text);
    let features = vec![
        numeric(
            "x",
            vec![
                Step::ImputeMedian,
                Step::RobustScale,
                Step::Log1p,
                Step::Standardize,
            ],
        ),
        numeric(
            "z",
            vec![
                Step::Winsorize { lo: 0.05, hi: 0.9 },
                Step::MinMax,
                Step::Scale { factor: 2.0 },
                Step::Standardize,
            ],
        ),
        category(
            "c",
            &["blue", "green", "red"],
            vec![Step::ImputeMode, Step::Ordinal],
        ),
    ];
    let plan = streamed(small_plan(&path, features, no_split()));
    // `log1p` after a robust scale meets values below -1 (found by the pass that fits the
    // standardization after it).
    let e = stream::fit(&plan, 1).unwrap_err();
    assert!(e.message.contains("log1p"), "{}", e.message);
    assert!(e.diagnostic().message.contains("log1p"));
    let mut plan = plan;
    plan.features[0].steps = vec![
        Step::ImputeMedian,
        Step::RobustScale,
        Step::Clip { lo: -1.0, hi: 1.0 },
    ];
    for seed in [1, 2, 3] {
        assert_eq!(
            stream::fit(&plan, seed).unwrap().pre,
            fit_in_memory(&plan, seed)
        );
    }
}

#[test]
fn the_streamed_split_follows_each_rows_text_not_its_position() {
    let plan = streamed(example_plan("penguins.mlx"));
    let dir = scratch("stream-order");
    let src = root().join("examples/data/penguins.csv");
    let text = std::fs::read_to_string(&src).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    let reversed: Vec<&str> = std::iter::once(header)
        .chain(lines.iter().rev().copied())
        .collect();
    let path = write(&dir, "reversed.csv", &(reversed.join("\n") + "\n"));
    let mut rev = plan.clone();
    if let Loader::Csv { path: p, .. } = &mut rev.sources[0].loader {
        *p = path;
    }
    // Each row's part, by its text, is the same in either order.
    let parts_by_text = |plan: &DatasetPlan, file: &str| {
        let raw = raw_lines(std::path::Path::new(file));
        let mut m: Vec<(Vec<String>, usize)> = Vec::new();
        for (i, set) in lines_by_part(plan, 7).iter().enumerate() {
            for l in set {
                m.push((raw[l].clone(), i));
            }
        }
        m.sort();
        m
    };
    let a = parts_by_text(&plan, src.to_str().unwrap());
    let b = parts_by_text(&rev, dir.join("reversed.csv").to_str().unwrap());
    assert_eq!(a, b);
    // Another seed, another split.
    assert_ne!(lines_by_part(&plan, 7)[0], lines_by_part(&plan, 8)[0]);
}

#[test]
fn streamed_chunks_report_bad_rows_at_their_line() {
    let dir = scratch("stream-bad");
    let mut text = String::from("x,y\n");
    for i in 0..70_000 {
        text.push_str(&format!("{i},a\n"));
    }
    text.push_str("oops,b\n");
    let path = write(&dir, "d.csv", &text);
    let plan = streamed(small_plan(
        &path,
        vec![numeric("x", vec![Step::Standardize])],
        no_split(),
    ));
    let e = stream::fit(&plan, 1).unwrap_err();
    let d = e.diagnostic();
    let shown = format!("{} {:?}", d.message, d.notes);
    assert!(e.message.contains("oops"), "{}", e.message);
    assert!(
        shown.contains("70002") || format!("{e:?}").contains("70002"),
        "{e:?}"
    );
}
