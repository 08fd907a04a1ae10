//! IDX: Fashion-MNIST as installed by the Debian package (skipped with a notice when absent,
//! unless `MLX_REQUIRE_DATA` is set), and small hand-written IDX files.

use super::*;
use crate::data::{Data, FittedStep, Preprocessor};

fn installed() -> bool {
    let here = Path::new("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists();
    if !here {
        assert!(
            std::env::var_os("MLX_REQUIRE_DATA").is_none(),
            "MLX_REQUIRE_DATA is set but Fashion-MNIST is not installed"
        );
        eprintln!("skipping: Fashion-MNIST is not installed (package dataset-fashion-mnist)");
    }
    here
}

#[test]
fn fashion_mnist_loads_splits_and_scales() {
    if !installed() {
        return;
    }
    let plan = example_plan("fashion_mlp.mlx");
    let data = Data::load(&plan).unwrap();
    assert_eq!(data.len(), 70_000);
    let train_role = (0..data.len())
        .filter(|r| data.role(*r) == SourceRole::Train)
        .count();
    assert_eq!(train_role, 60_000);
    let folds = data.folds(&plan, 1).unwrap();
    let f = &folds[0];
    assert_eq!(
        (f.train.len(), f.val.len(), f.test.len()),
        (54_000, 6_000, 10_000)
    );
    assert_eq!(f.test, (60_000..70_000).collect::<Vec<_>>());
    let mut per_class = [0usize; 10];
    for r in &f.val {
        per_class[data.class(*r).unwrap() as usize] += 1;
    }
    assert_eq!(per_class, [600; 10], "stratified holdout");

    let pre = Preprocessor::fit(&plan, &data, &f.train).unwrap();
    assert_eq!(pre.width(), 784);
    assert!(matches!(
        pre.features[0].steps[1],
        FittedStep::Normalize { .. }
    ));
    let rows: Vec<usize> = f.val.iter().copied().take(500).collect();
    let mut x = Vec::new();
    pre.features(&data, &rows, &mut x).unwrap();
    assert_eq!(x.len(), 500 * 784);
    let (lo, hi) = ((0.0 - 0.2860) / 0.3530, (1.0 - 0.2860) / 0.3530);
    assert!(
        x.iter()
            .all(|v| (lo - 1e-5..=hi + 1e-5).contains(&f64::from(*v)))
    );
    let min = x.iter().copied().fold(f32::MAX, f32::min);
    let max = x.iter().copied().fold(f32::MIN, f32::max);
    assert!((f64::from(min) - lo).abs() < 1e-5 && (f64::from(max) - hi).abs() < 1e-5);
    let mean = x.iter().map(|v| f64::from(*v)).sum::<f64>() / x.len() as f64;
    assert!(
        mean.abs() < 0.1,
        "normalised with the data set's own mean: {mean}"
    );
    let mut y = Vec::new();
    data.targets(&rows, &mut y);
    assert!(
        y.iter()
            .all(|c| (0.0..10.0).contains(c) && c.fract() == 0.0)
    );
}

fn idx_file(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

fn image_plan(images: &Path, labels: &Path, steps: Vec<Step>) -> DatasetPlan {
    let mut plan = small_plan(images, vec![], Split::None);
    plan.sources = vec![SourcePlan {
        role: SourceRole::All,
        loader: Loader::Idx {
            images: images.to_path_buf(),
            labels: Some(labels.to_path_buf()),
        },
        span: Span::default(),
    }];
    plan.features = vec![FeaturePlan {
        column: "image".into(),
        kind: ColumnKind::Tensor {
            shape: vec![1, 2, 2],
        },
        steps,
        width: 4,
        span: Span::default(),
    }];
    plan.target = TargetPlan {
        column: "label".into(),
        kind: TargetKind::Class {
            classes: 3,
            levels: vec!["0".into(), "1".into(), "2".into()],
            numeric: true,
        },
        drop_missing: false,
        span: Span::default(),
    };
    plan.feature_shape = vec![1, 2, 2];
    plan
}

#[test]
fn small_idx_files_standardize_globally_and_dedup() {
    let dir = scratch("idx");
    let px = [0, 10, 20, 30, 40, 50, 60, 70, 0, 10, 20, 30];
    let images = write_bytes(&dir, "img.idx", &idx_file(&[3, 2, 2], &px));
    let labels = write_bytes(&dir, "lab.idx", &idx_file(&[3], &[0, 2, 0]));
    let plan = image_plan(
        &images,
        &labels,
        vec![Step::Scale { factor: 0.1 }, Step::Standardize],
    );
    let data = Data::load(&plan).unwrap();
    assert_eq!(data.len(), 3);
    let pre = Preprocessor::fit(&plan, &data, &[0, 1]).unwrap();
    // One global statistic over the 8 training pixels 0..7 after scaling.
    let FittedStep::Standardize { mean, std } = pre.features[0].steps[1] else {
        panic!()
    };
    assert!((mean - 3.5).abs() < 1e-12 && (std - 5.25f64.sqrt()).abs() < 1e-12);
    let mut x = Vec::new();
    pre.features(&data, &[2], &mut x).unwrap();
    let z = |v: f64| ((v - 3.5) / 5.25f64.sqrt()) as f32;
    for (a, b) in x.iter().zip([z(0.0), z(1.0), z(2.0), z(3.0)]) {
        assert!((a - b).abs() < 1e-6, "{x:?}");
    }

    let mut dd = plan.clone();
    dd.dedup = true;
    assert_eq!(
        Data::load(&dd).unwrap().len(),
        2,
        "record 3 repeats record 1"
    );

    let bad = write_bytes(&dir, "badlab.idx", &idx_file(&[3], &[0, 3, 0]));
    let e = Data::load(&image_plan(&images, &bad, vec![])).unwrap_err();
    assert_eq!(e.code, "mlx::data::label");
    let short = write_bytes(&dir, "short.idx", &idx_file(&[3], &[0, 1]));
    let e = Data::load(&image_plan(&images, &short, vec![])).unwrap_err();
    assert_eq!(e.code, "mlx::data::malformed");
    assert!(e.message.contains("truncated"), "{}", e.message);
    let two = write_bytes(&dir, "two.idx", &idx_file(&[2], &[0, 1]));
    assert_eq!(
        Data::load(&image_plan(&images, &two, vec![]))
            .unwrap_err()
            .code,
        "mlx::data::malformed"
    );
    assert_eq!(
        Data::load(&image_plan(&dir.join("none.gz"), &labels, vec![]))
            .unwrap_err()
            .code,
        "mlx::data::file_missing"
    );
    assert_eq!(
        Data::load_for_predict(&plan, &labels).unwrap_err().code,
        "mlx::data::column_missing"
    );
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}
