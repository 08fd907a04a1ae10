//! Fitted statistics against independent hand computations on the penguins training rows,
//! no leakage from held-out rows, the JSON round trip, and every step's arithmetic.

use super::*;
use crate::data::{Data, Fill, FittedStep, Preprocessor};

fn penguins() -> (DatasetPlan, Data, Vec<usize>) {
    let plan = example_plan("penguins.mlx");
    let data = Data::load(&plan).unwrap();
    let folds = data.folds(&plan, 7).unwrap();
    (plan, data, folds[0].train.clone())
}

/// The raw text of `field` (a CSV column index) for each row, from an independent reading.
fn raw(data: &Data, rows: &[usize], field: usize) -> Vec<String> {
    let (path, _) = data.origin(0);
    let lines = raw_lines(path);
    rows.iter()
        .map(|r| lines[&data.origin(*r).1][field].clone())
        .collect()
}

fn numbers(raw: &[String]) -> Vec<Option<f64>> {
    raw.iter()
        .map(|v| (v != "NA").then(|| v.parse().unwrap()))
        .collect()
}

fn hand_median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn hand_mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

/// numpy.quantile(v, q) with the default linear method.
fn hand_quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let h = (s.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    s[lo] + (h - h.floor()) * (s[hi] - s[lo])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

#[track_caller]
fn assert_close(a: f64, b: f64) {
    assert!(close(a, b), "{a} != {b}");
}

#[test]
fn penguin_statistics_match_hand_computations_on_training_rows() {
    let (_, data, train) = penguins();
    let pre = Preprocessor::fit(&example_plan("penguins.mlx"), &data, &train).unwrap();
    let f = &pre.features;
    assert_eq!(f.len(), 6);
    assert_eq!(pre.width(), 4 + 3 + 2);

    // bill_length_mm: impute(median) |> standardize
    let bill = numbers(&raw(&data, &train, 2));
    assert!(
        bill.iter().any(Option::is_none),
        "the training rows hold a missing value"
    );
    let present: Vec<f64> = bill.iter().flatten().copied().collect();
    let median = hand_median(&present);
    let FittedStep::ImputeMedian { value } = f[0].steps[0] else {
        panic!("{:?}", f[0].steps)
    };
    assert_close(value, median);
    let imputed: Vec<f64> = bill.iter().map(|x| x.unwrap_or(median)).collect();
    let (m, s) = hand_mean_std(&imputed);
    let FittedStep::Standardize { mean, std } = f[0].steps[1] else {
        panic!()
    };
    assert_close(mean, m);
    assert_close(std, s);
    // The whole pool's median differs: the statistic really is the training rows'.
    let all: Vec<usize> = (0..data.len()).collect();
    let all_median = hand_median(
        &numbers(&raw(&data, &all, 2))
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
    );
    assert_ne!(all_median, median);

    // flipper_length_mm: impute(median) |> winsorize(0.01, 0.99) |> standardize
    let flip = numbers(&raw(&data, &train, 4));
    let fmed = hand_median(&flip.iter().flatten().copied().collect::<Vec<_>>());
    let imputed: Vec<f64> = flip.iter().map(|x| x.unwrap_or(fmed)).collect();
    let (lo, hi) = (hand_quantile(&imputed, 0.01), hand_quantile(&imputed, 0.99));
    let FittedStep::Winsorize {
        lo: flo,
        hi: fhi,
        lo_quantile,
        hi_quantile,
    } = f[2].steps[1]
    else {
        panic!("{:?}", f[2].steps)
    };
    assert_eq!((lo_quantile, hi_quantile), (0.01, 0.99));
    assert_close(flo, lo);
    assert_close(fhi, hi);
    let clipped: Vec<f64> = imputed.iter().map(|x| x.clamp(lo, hi)).collect();
    let (m, s) = hand_mean_std(&clipped);
    let FittedStep::Standardize { mean, std } = f[2].steps[2] else {
        panic!()
    };
    assert_close(mean, m);
    assert_close(std, s);

    // body_mass_g: impute(mean)
    let mass: Vec<f64> = numbers(&raw(&data, &train, 5))
        .into_iter()
        .flatten()
        .collect();
    let FittedStep::ImputeMean { value } = f[3].steps[0] else {
        panic!()
    };
    assert_close(value, hand_mean_std(&mass).0);

    // island: one_hot, fitted levels exactly the training rows' levels.
    let mut islands = raw(&data, &train, 1);
    islands.sort();
    islands.dedup();
    let FittedStep::OneHot { levels, fitted } = &f[4].steps[0] else {
        panic!()
    };
    assert_eq!(levels, &["Biscoe", "Dream", "Torgersen"]);
    assert_eq!(fitted, &islands);

    // sex: impute(mode) |> one_hot
    let sexes = raw(&data, &train, 6);
    let count = |s: &str| sexes.iter().filter(|x| *x == s).count();
    let mode = if count("male") > count("female") {
        "male"
    } else {
        "female"
    };
    assert_eq!(
        f[5].steps[0],
        FittedStep::ImputeMode {
            value: Fill::Text(mode.into())
        }
    );
    let FittedStep::OneHot { fitted, .. } = &f[5].steps[1] else {
        panic!()
    };
    assert_eq!(fitted, &["female", "male"]);
}

/// Rewrite the penguins file with the given lines changed, and load it with the same plan.
fn penguins_with(plan: &DatasetPlan, edit: impl Fn(usize, &mut Vec<String>), test: &str) -> Data {
    let Loader::Csv { path, .. } = &plan.sources[0].loader else {
        panic!()
    };
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        let mut fields: Vec<String> = l.split(',').map(str::to_string).collect();
        edit(i + 1, &mut fields);
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    let p = write(&scratch(test), "penguins.csv", &out);
    let mut plan = plan.clone();
    if let Loader::Csv { path, .. } = &mut plan.sources[0].loader {
        *path = p;
    }
    Data::load(&plan).unwrap()
}

#[test]
fn held_out_rows_never_change_a_statistic() {
    let (plan, data, _) = penguins();
    let fold = data.folds(&plan, 7).unwrap().remove(0);
    let pre = Preprocessor::fit(&plan, &data, &fold.train).unwrap();
    let held: Vec<usize> = fold
        .val
        .iter()
        .chain(&fold.test)
        .map(|r| data.origin(*r).1)
        .collect();
    let first_train = data.origin(fold.train[0]).1;

    // Change every numeric value and the sex of every validation and test row.
    let changed = penguins_with(
        &plan,
        |line, f| {
            if held.contains(&line) {
                for v in &mut f[2..6] {
                    *v = format!("{}", 900 + line);
                }
                f[6] = "NA".into();
            }
        },
        "held-out",
    );
    assert_eq!(changed.folds(&plan, 7).unwrap()[0], fold);
    let pre2 = Preprocessor::fit(&plan, &changed, &fold.train).unwrap();
    assert_eq!(pre, pre2, "a held-out row changed a fitted statistic");
    // ...while their features did change (the edit took effect).
    let (mut a, mut b) = (Vec::new(), Vec::new());
    pre.features(&data, &fold.val, &mut a).unwrap();
    pre2.features(&changed, &fold.val, &mut b).unwrap();
    assert_ne!(a, b);

    // The same change to one training row does change the statistics.
    let changed = penguins_with(
        &plan,
        |line, f| {
            if line == first_train {
                f[2] = "999".into();
            }
        },
        "train-row",
    );
    let pre3 = Preprocessor::fit(&plan, &changed, &fold.train).unwrap();
    assert_ne!(pre.features[0].steps[1], pre3.features[0].steps[1]);
}

#[test]
fn json_round_trip_gives_identical_features() {
    for (example, seed) in [("penguins.mlx", 7), ("diabetes.mlx", 3)] {
        let plan = example_plan(example);
        let data = Data::load(&plan).unwrap();
        let fold = data.folds(&plan, seed).unwrap().remove(0);
        let pre = Preprocessor::fit(&plan, &data, &fold.train).unwrap();
        let json = pre.to_json();
        let back = Preprocessor::from_json(&json).unwrap();
        let direct: Preprocessor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pre);
        assert_eq!(direct, pre);
        assert_eq!(back.to_json(), json);
        let all: Vec<usize> = (0..data.len()).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        pre.features(&data, &all, &mut a).unwrap();
        back.features(&data, &all, &mut b).unwrap();
        assert_eq!(a.len(), all.len() * pre.width());
        assert_eq!(pre.width(), plan.feature_shape.iter().product::<usize>());
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b));
        assert!(a.iter().all(|x| x.is_finite()));
    }
    let plan = example_plan("penguins.mlx");
    let data = Data::load(&plan).unwrap();
    let pre = Preprocessor::fit(&plan, &data, &data.folds(&plan, 7).unwrap()[0].train).unwrap();
    let json = pre.to_json();
    for needle in [
        r#""column": "bill_length_mm""#,
        r#""step": "impute_median""#,
        r#""step": "standardize""#,
        r#""step": "one_hot""#,
        r#""fitted": ["#,
    ] {
        assert!(json.contains(needle), "{needle} not in {json}");
    }
    assert_eq!(
        Preprocessor::from_json("{\"features\": 3}")
            .unwrap_err()
            .code,
        "mlx::data::malformed"
    );
}

#[test]
fn standardized_training_features_have_zero_mean_and_unit_std() {
    let plan = example_plan("diabetes.mlx");
    let data = Data::load(&plan).unwrap();
    assert_eq!(data.len(), 442);
    let fold = data.folds(&plan, 3).unwrap().remove(0);
    let pre = Preprocessor::fit(&plan, &data, &fold.train).unwrap();
    assert_eq!(pre.width(), 10);
    let mut x = Vec::new();
    pre.features(&data, &fold.train, &mut x).unwrap();
    for j in 0..10 {
        let col: Vec<f64> = x
            .iter()
            .skip(j)
            .step_by(10)
            .map(|v| f64::from(*v))
            .collect();
        let (m, s) = hand_mean_std(&col);
        assert!(
            m.abs() < 1e-5 && (s - 1.0).abs() < 1e-5,
            "column {j}: {m} {s}"
        );
    }
    let mut y = Vec::new();
    data.targets(&fold.train[..3], &mut y);
    let lines = raw_lines(data.origin(0).0);
    let want: Vec<f32> = fold.train[..3]
        .iter()
        .map(|r| lines[&data.origin(*r).1][10].parse().unwrap())
        .collect();
    assert_eq!(y, want);
}

#[test]
fn every_step_on_a_small_table() {
    let dir = scratch("steps");
    let p = write(
        &dir,
        "t.csv",
        "a,b,c,y\n1,x,0,a\n2, y ,1,b\nNA,x,2,a\n4,NA,3,b\n 10 ,z,4,a\n",
    );
    use Step::*;
    let plan = small_plan(
        &p,
        vec![
            numeric("a", vec![ImputeMode, MinMax]),
            numeric("a", vec![ImputeMedian, RobustScale]),
            numeric(
                "a",
                vec![
                    ImputeConstant {
                        value: crate::check::hir::ConstValue::Number(-0.5),
                    },
                    Log1p,
                    Clip { lo: 0.0, hi: 1.0 },
                ],
            ),
            numeric(
                "c",
                vec![
                    Scale { factor: 2.0 },
                    Normalize {
                        mean: 1.0,
                        std: 2.0,
                    },
                ],
            ),
            category(
                "b",
                &["x", "y", "z"],
                vec![ImputeMode, Ordinal, Standardize],
            ),
            category(
                "b",
                &["x", "y", "z"],
                vec![
                    ImputeConstant {
                        value: crate::check::hir::ConstValue::Text("x".into()),
                    },
                    OneHot,
                ],
            ),
        ],
        no_split(),
    );
    let data = Data::load(&plan).unwrap();
    // Train on the first four rows: "z" is never seen in training.
    let pre = Preprocessor::fit(&plan, &data, &[0, 1, 2, 3]).unwrap();
    let f = &pre.features;
    // a over training rows: 1, 2, NA, 4. Mode: all tie -> smallest, 1.
    assert_eq!(
        f[0].steps[0],
        FittedStep::ImputeMode {
            value: Fill::Number(1.0)
        }
    );
    assert_eq!(f[0].steps[1], FittedStep::MinMax { min: 1.0, max: 4.0 });
    // Median 2; values 1, 2, 2, 4: q25 = 1.75, q75 = 2.5.
    assert_eq!(
        f[1].steps[1],
        FittedStep::RobustScale {
            median: 2.0,
            iqr: 0.75
        }
    );
    // Ordinal over training levels x, y (sorted); "z" -> -1.
    assert_eq!(
        f[4].steps[1],
        FittedStep::Ordinal {
            levels: vec!["x".into(), "y".into()]
        }
    );
    let mut out = Vec::new();
    pre.features(&data, &[0, 2, 4], &mut out).unwrap();
    assert_eq!(out.len(), 3 * pre.width());
    assert_eq!(pre.width(), 5 + 3);
    let row = |i: usize| &out[i * 8..(i + 1) * 8];
    let ln = |x: f64| (x.ln_1p()).clamp(0.0, 1.0) as f32;
    // Ordinal values of training rows x, y, x, x(imputed mode): 0, 1, 0, 0 -> mean .25, std sqrt(3)/4.
    let z = |v: f64| ((v - 0.25) / (3f64.sqrt() / 4.0)) as f32;
    assert_eq!(
        row(0),
        [0.0, -1.0 / 0.75, ln(1.0), -0.5, z(0.0), 1.0, 0.0, 0.0]
    );
    assert_eq!(row(1), [0.0, 0.0, ln(-0.5), 1.5, z(0.0), 1.0, 0.0, 0.0]);
    // Row 5: a = 10 (beyond training max), b = "z" (unseen), c = 4.
    assert_eq!(row(2), [3.0, 8.0 / 0.75, 1.0, 3.5, z(-1.0), 0.0, 0.0, 0.0]);
    assert_eq!(
        pre.unseen_levels(&data, &[0, 1, 2, 3, 4]),
        vec![(4, r#"b = "z", b = "z""#.to_string())]
    );
}
