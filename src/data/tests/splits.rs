//! Splits (random, stratified, holdout, k-fold, none) and per-epoch shuffled batches.

use super::*;
use crate::data::{Data, Fold, shuffled_batches};
use std::collections::BTreeSet;

fn assert_partition(f: &Fold, n: usize) {
    let all: BTreeSet<usize> = f
        .train
        .iter()
        .chain(&f.val)
        .chain(&f.test)
        .copied()
        .collect();
    assert_eq!(
        all.len(),
        f.train.len() + f.val.len() + f.test.len(),
        "parts overlap"
    );
    assert_eq!(all, (0..n).collect(), "parts do not cover every row");
    for part in [&f.train, &f.val, &f.test] {
        assert!(part.windows(2).all(|w| w[0] < w[1]), "not sorted");
    }
}

fn class_counts(data: &Data, rows: &[usize]) -> Vec<usize> {
    let mut c = vec![0; 3];
    for r in rows {
        c[data.class(*r).unwrap() as usize] += 1;
    }
    c
}

#[test]
fn random_split_sizes_and_stratified_proportions() {
    let plan = example_plan("penguins.mlx");
    let data = Data::load(&plan).unwrap();
    assert_eq!(data.len(), 344);
    let folds = data.folds(&plan, 7).unwrap();
    assert_eq!(folds.len(), 1);
    let f = &folds[0];
    assert_partition(f, 344);
    // 344 * (.7, .15, .15) = 240.8, 51.6, 51.6; per-class rounding may move a row or two.
    assert!(f.train.len().abs_diff(241) <= 2, "{}", f.train.len());
    assert!(f.val.len().abs_diff(52) <= 2 && f.test.len().abs_diff(52) <= 2);
    let all = class_counts(&data, &(0..344).collect::<Vec<_>>());
    for (part, frac) in [(&f.train, 0.7), (&f.val, 0.15), (&f.test, 0.15)] {
        for (c, n) in class_counts(&data, part).iter().zip(&all) {
            assert!(
                (*c as f64 - *n as f64 * frac).abs() <= 1.0,
                "{c} of {n} for {frac}"
            );
        }
    }
    // Unstratified: exactly the largest-remainder counts.
    let mut plain = plan.clone();
    plain.split = Split::Random {
        train: 0.7,
        val: 0.15,
        test: 0.15,
        stratify: false,
    };
    let f = data.folds(&plain, 7).unwrap().remove(0);
    assert_partition(&f, 344);
    assert_eq!((f.train.len(), f.val.len(), f.test.len()), (241, 52, 51));

    // Same seed, same folds; another seed, another split.
    assert_eq!(data.folds(&plan, 7).unwrap(), folds);
    assert_ne!(data.folds(&plan, 8).unwrap(), folds);
    assert_eq!(Data::load(&plan).unwrap().folds(&plan, 7).unwrap(), folds);
}

#[test]
fn kfold_partitions_the_rows() {
    let plan = example_plan("diabetes.mlx");
    let data = Data::load(&plan).unwrap();
    let folds = data.folds(&plan, 3).unwrap();
    assert_eq!(folds.len(), 5);
    let mut seen = BTreeSet::new();
    for f in &folds {
        assert_partition(f, 442);
        assert!(f.test.is_empty());
        assert!(f.val.len() == 88 || f.val.len() == 89, "{}", f.val.len());
        for r in &f.val {
            assert!(seen.insert(*r), "row {r} validates twice");
        }
    }
    assert_eq!(seen.len(), 442);
    assert_eq!(data.folds(&plan, 3).unwrap(), folds);
    assert_ne!(data.folds(&plan, 4).unwrap(), folds);

    // Stratified k-fold on penguins: every class spread evenly over the folds.
    let plan = example_plan("penguins.mlx");
    let mut kf = plan.clone();
    kf.split = Split::KFold {
        k: 5,
        stratify: true,
    };
    let data = Data::load(&kf).unwrap();
    let folds = data.folds(&kf, 1).unwrap();
    let sizes: Vec<usize> = folds.iter().map(|f| f.val.len()).collect();
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    for c in 0..3 {
        let per: Vec<usize> = folds
            .iter()
            .map(|f| class_counts(&data, &f.val)[c])
            .collect();
        assert!(
            per.iter().max().unwrap() - per.iter().min().unwrap() <= 1,
            "{per:?}"
        );
    }
}

#[test]
fn holdout_and_named_sources() {
    let dir = scratch("holdout");
    let mut train = String::from("x,y\n");
    for i in 0..40 {
        train.push_str(&format!("{i},{}\n", if i % 4 == 0 { "b" } else { "a" }));
    }
    let tr = write(&dir, "train.csv", &train);
    let te = write(&dir, "test.csv", "x,y\n100,a\n101,b\n102,a\n");
    let va = write(&dir, "val.csv", "x,y\n200,b\n");
    let mut plan = small_plan(
        &tr,
        vec![numeric("x", vec![Step::Standardize])],
        Split::Holdout {
            val: 0.25,
            stratify: true,
        },
    );
    plan.sources = vec![
        csv_source(SourceRole::Test, &te, &[]),
        csv_source(SourceRole::Train, &tr, &[]),
    ];
    let data = Data::load(&plan).unwrap();
    assert_eq!(data.len(), 43);
    let f = data.folds(&plan, 5).unwrap().remove(0);
    assert_partition(&f, 43);
    assert_eq!(f.test, [0, 1, 2]);
    // Stratified, per class by largest remainder (ties to train): 30 a -> 7.5, 10 b -> 2.5.
    assert_eq!(class_counts(&data, &f.val)[..2], [7, 2]);
    assert!(
        f.train
            .iter()
            .chain(&f.val)
            .all(|r| data.role(*r) == SourceRole::Train)
    );

    // No split: the sources are the parts.
    plan.split = Split::None;
    plan.sources.push(csv_source(SourceRole::Val, &va, &[]));
    let data = Data::load(&plan).unwrap();
    let f = data.folds(&plan, 5).unwrap().remove(0);
    assert_eq!(
        (f.train.len(), f.val, f.test),
        (40, vec![43], vec![0, 1, 2])
    );
    assert_eq!(data.origin(43), (va.as_path(), 2));

    // A split that leaves no training rows.
    let small = write(&dir, "small.csv", "x,y\n1,a\n2,b\n3,a\n");
    let plan = small_plan(
        &small,
        vec![numeric("x", vec![])],
        Split::Random {
            train: 0.01,
            val: 0.99,
            test: 0.0,
            stratify: false,
        },
    );
    let e = Data::load(&plan).unwrap().folds(&plan, 1).unwrap_err();
    assert_eq!(e.code, "mlx::data::split");
    assert!(e.message.contains("no training rows"), "{}", e.message);
}

#[test]
fn dedup_and_drop_missing_remove_rows() {
    let dir = scratch("dedup");
    let p = write(
        &dir,
        "d.csv",
        "x,z,y\n1,q,a\n2,q,b\n1,q,a\n1,r,a\nNA,q,b\n3,q,NA\n",
    );
    let mut plan = small_plan(&p, vec![numeric("x", vec![Step::DropMissing])], no_split());
    plan.target.drop_missing = true;
    assert_eq!(Data::load(&plan).unwrap().len(), 4);
    plan.dedup = true;
    let data = Data::load(&plan).unwrap();
    // Line 4 repeats line 2 in every column; line 5 differs in `z`, an unused column.
    assert_eq!(data.len(), 3);
    let lines: Vec<usize> = (0..3).map(|r| data.origin(r).1).collect();
    assert_eq!(lines, [2, 3, 5]);
    assert_eq!(data.numeric("x").unwrap(), [1.0, 2.0, 1.0]);
}

#[test]
fn shuffled_batches_cover_every_row_once() {
    let rows: Vec<usize> = (100..203).collect();
    let b = shuffled_batches(&rows, 10, 7, 0);
    assert_eq!(b.len(), 11);
    assert!(b[..10].iter().all(|x| x.len() == 10));
    assert_eq!(b[10].len(), 3);
    let mut all: Vec<usize> = b.concat();
    assert_ne!(all, rows, "not shuffled");
    all.sort_unstable();
    assert_eq!(all, rows);
    assert_eq!(shuffled_batches(&rows, 10, 7, 0), b);
    assert_ne!(shuffled_batches(&rows, 10, 7, 1), b);
    assert_ne!(shuffled_batches(&rows, 10, 8, 0), b);
    assert_eq!(shuffled_batches(&rows, 1000, 7, 0).len(), 1);
    assert!(shuffled_batches(&[], 4, 7, 0).is_empty());
    // The stream is the named one: the same permutation as shuffling by hand.
    let mut by_hand = rows.clone();
    crate::rng::Rng::new(7, "shuffle/epoch-3").shuffle(&mut by_hand);
    assert_eq!(shuffled_batches(&rows, 103, 7, 3), vec![by_hand]);
}
