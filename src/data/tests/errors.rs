//! Bad input: malformed rows, missing files, text in numbers, bad log1p values, bad labels,
//! prediction input lacking columns or holding levels never seen in training.

use super::*;
use crate::data::{Data, DataError, Preprocessor};

fn load_err(path: &Path, features: Vec<FeaturePlan>) -> DataError {
    Data::load(&small_plan(path, features, no_split())).unwrap_err()
}

#[test]
fn malformed_rows_and_missing_files_name_file_and_line() {
    let dir = scratch("malformed");
    let p = write(&dir, "bad.csv", "x,y\n1,a\n2,b\n3\n4,a\n");
    let e = load_err(&p, vec![numeric("x", vec![])]);
    assert_eq!(e.code, "mlx::data::malformed");
    assert_eq!(e.line, Some(4));
    let d = e.diagnostic();
    assert_eq!(d.code, "mlx::data::malformed");
    assert!(
        d.message.starts_with(&format!("{}:4: ", p.display())),
        "{}",
        d.message
    );
    assert!(d.labels.is_empty());

    let gone = dir.join("nope.csv");
    let e = load_err(&gone, vec![numeric("x", vec![])]);
    assert_eq!(e.code, "mlx::data::file_missing");
    assert!(e.diagnostic().message.contains("nope.csv"));

    let p = write(&dir, "text.csv", "x,y\n1,a\n 2 ,b\nNaN,a\n3,a\nfour,b\n");
    let e = load_err(&p, vec![numeric("x", vec![Step::ImputeMean])]);
    assert_eq!(e.code, "mlx::data::malformed");
    assert_eq!(e.line, Some(6));
    assert!(
        e.message.contains("`x`") && e.message.contains("four"),
        "{}",
        e.message
    );
    assert!(e.diagnostic().message.contains("text.csv:6:"));

    let p = write(&dir, "label.csv", "x,y\n1,a\n2,c\n");
    let e = load_err(&p, vec![numeric("x", vec![])]);
    assert_eq!((e.code, e.line), ("mlx::data::label", Some(3)));
    assert!(e.message.contains("\"c\""), "{}", e.message);

    let p = write(&dir, "nocol.csv", "w,y\n1,a\n");
    assert_eq!(
        load_err(&p, vec![numeric("x", vec![])]).code,
        "mlx::data::column_missing"
    );
}

#[test]
fn log1p_below_minus_one_is_a_value_error() {
    let dir = scratch("log1p");
    // In a training row: fitting fails.
    let p = write(&dir, "t.csv", "x,y\n1,a\n-5,b\n3,a\n");
    let plan = small_plan(&p, vec![numeric("x", vec![Step::Log1p])], no_split());
    let data = Data::load(&plan).unwrap();
    let e = Preprocessor::fit(&plan, &data, &[0, 1, 2]).unwrap_err();
    assert_eq!((e.code, e.line), ("mlx::data::value", Some(3)));
    assert!(
        e.message.contains("`x`") && e.message.contains("-5"),
        "{}",
        e.message
    );
    // In a held-out row: fitting succeeds, its features fail.
    let pre = Preprocessor::fit(&plan, &data, &[0, 2]).unwrap();
    let mut out = Vec::new();
    pre.features(&data, &[0, 2], &mut out).unwrap();
    assert!((out[0] - 2f32.ln()).abs() < 1e-6 && (out[1] - 4f32.ln()).abs() < 1e-6);
    let e = pre.features(&data, &[1], &mut out).unwrap_err();
    assert_eq!((e.code, e.line), ("mlx::data::value", Some(3)));
}

#[test]
fn prediction_input() {
    let plan = example_plan("penguins.mlx");
    let data = Data::load(&plan).unwrap();
    let train = data.folds(&plan, 7).unwrap().remove(0).train;
    let pre = Preprocessor::fit(&plan, &data, &train).unwrap();
    let dir = scratch("predict");

    let p = write(
        &dir,
        "lacks.csv",
        "island,bill_length_mm,sex\nDream,40,male\n",
    );
    let e = Data::load_for_predict(&plan, &p).unwrap_err();
    assert_eq!(e.code, "mlx::data::column_missing");
    for c in ["bill_depth_mm", "flipper_length_mm", "body_mass_g"] {
        assert!(e.message.contains(c), "{}", e.message);
    }
    assert!(!e.message.contains("`island`"));

    // No target column; an island never seen in training; a missing sex (imputed).
    let p = write(
        &dir,
        "new.csv",
        "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,island,sex\n\
         39.1,18.7,181,3750,Torgersen,male\n\
         40,18,190,NA,Atlantis,NA\n",
    );
    let new = Data::load_for_predict(&plan, &p).unwrap();
    assert_eq!(new.len(), 2);
    assert!(new.unusable_rows().is_empty());
    assert_eq!(
        pre.unseen_levels(&new, &[0, 1]),
        vec![(1, r#"island = "Atlantis""#.to_string())]
    );
    let mut out = Vec::new();
    pre.features(&new, &[0, 1], &mut out).unwrap();
    assert_eq!(out.len(), 2 * 9);
    assert_eq!(out[4..7], [0.0, 0.0, 1.0], "Torgersen");
    assert_eq!(
        out[9 + 4..9 + 7],
        [0.0, 0.0, 0.0],
        "an unseen level encodes as zeros"
    );
    // The same row in the training data gives the same features.
    let row = (0..data.len()).find(|r| data.origin(*r).1 == 2).unwrap();
    let mut same = Vec::new();
    pre.features(&data, &[row], &mut same).unwrap();
    assert_eq!(same, out[..9]);
    let mut t = Vec::new();
    new.targets(&[0], &mut t);
    assert!(t[0].is_nan());

    // A missing value where the plan drops rows: kept, marked unusable, NaN features.
    let mut dropping = plan.clone();
    dropping.features[0].steps.insert(0, Step::DropMissing);
    let p = write(
        &dir,
        "drop.csv",
        "bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,island,sex,species\n\
         NA,18.7,181,3750,Torgersen,male,Adelie\n\
         40,18,190,3800,Dream,female,Nope\n",
    );
    let new = Data::load_for_predict(&dropping, &p).unwrap();
    assert_eq!(new.unusable_rows(), [0]);
    let mut out = Vec::new();
    pre.features(&new, &[0, 1], &mut out).unwrap();
    assert!(out[..9].iter().all(|x| x.is_nan()));
    assert!(out[9..].iter().all(|x| x.is_finite()));
}
