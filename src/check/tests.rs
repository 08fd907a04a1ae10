//! Unit tests of the checker's output: plans and instance shapes for the canonical examples.

use super::dim::Dim;
use super::hir::{self, Op};
use crate::driver::check_file;
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Fashion-MNIST examples need the Debian package; skip with a notice when it is absent
/// (unless `MLX_REQUIRE_DATA` is set, as in CI).
fn fashion() -> bool {
    let here = std::path::Path::new("/usr/share/datasets/fashion-mnist").exists();
    if !here {
        assert!(
            std::env::var_os("MLX_REQUIRE_DATA").is_none(),
            "Fashion-MNIST is not installed"
        );
        eprintln!("note: skipping: /usr/share/datasets/fashion-mnist is not installed");
    }
    here
}

fn checked(name: &str, sets: &[&str]) -> hir::Program {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let c = check_file(&example(name), &sets);
    let msgs: Vec<String> = c.diags.iter().map(ToString::to_string).collect();
    assert!(c.ok(), "{name}: {msgs:#?}");
    c.program.expect("program")
}

fn result_shape(p: &hir::Program, inst: usize) -> Vec<Dim> {
    let i = &p.instances[inst];
    i.nodes[i.results[0]].shape.clone()
}

#[test]
fn penguins_features_and_target_come_from_the_data() {
    let p = checked("penguins.mlx", &[]);
    let d = &p.datasets[0];
    // 4 numeric columns + island (3 levels) + sex (2 levels).
    assert_eq!(d.feature_shape, vec![9]);
    let widths: Vec<usize> = d.features.iter().map(|f| f.width).collect();
    assert_eq!(widths, vec![1, 1, 1, 1, 3, 2]);
    assert_eq!(
        d.target.kind,
        hir::TargetKind::Class {
            classes: 3,
            levels: vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()],
            numeric: false
        }
    );
    let t = &p.trains[0];
    assert_eq!(t.model_call, "classifier(hidden: 32)");
    assert_eq!(t.epochs, 60);
    assert_eq!(t.seed, 7);
    assert!(matches!(t.optimizer, hir::Optimizer::Adam { lr, .. } if lr == 0.01));
    let es = t.early_stop.as_ref().expect("early stop");
    assert_eq!(
        (es.monitor.name(), es.patience),
        ("val.loss".to_string(), 10)
    );
    // `C` in the return type was bound from the target: the output is [B, 3].
    assert_eq!(
        result_shape(&p, t.instance),
        vec![Dim::sym("B"), Dim::constant(3)]
    );
    assert_eq!(p.root_trains, vec!["penguins_mlp".to_string()]);
}

#[test]
fn lenet_shapes_follow_conv_and_pool_arithmetic() {
    if !fashion() {
        return;
    }
    let p = checked("fashion_lenet.mlx", &[]);
    let t = &p.trains[0];
    let inst = &p.instances[t.instance];
    let calls: Vec<(String, Vec<Dim>)> = inst
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Call { layer, .. } => Some((layer.clone(), n.shape.clone())),
            _ => None,
        })
        .collect();
    let b = Dim::sym("B");
    let c = Dim::constant;
    let expect = vec![
        ("conv2d_0", vec![b.clone(), c(6), c(28), c(28)]),
        ("relu_0", vec![b.clone(), c(6), c(28), c(28)]),
        ("max_pool2d_0", vec![b.clone(), c(6), c(14), c(14)]),
        ("conv2d_1", vec![b.clone(), c(16), c(10), c(10)]),
        ("relu_1", vec![b.clone(), c(16), c(10), c(10)]),
        ("max_pool2d_1", vec![b.clone(), c(16), c(5), c(5)]),
        ("flatten_0", vec![b.clone(), c(400)]),
        ("dense_0", vec![b.clone(), c(120)]),
        ("relu_2", vec![b.clone(), c(120)]),
        ("dense_1", vec![b.clone(), c(84)]),
        ("relu_3", vec![b.clone(), c(84)]),
        ("dense_2", vec![b.clone(), c(10)]),
    ];
    let got: Vec<(&str, Vec<Dim>)> = calls.iter().map(|(l, s)| (l.as_str(), s.clone())).collect();
    assert_eq!(got, expect);
    assert_eq!(p.datasets[0].feature_shape, vec![1, 28, 28]);
}

/// Every instance reachable from `root` through calls and scans.
fn reachable(p: &hir::Program, root: usize) -> Vec<usize> {
    let mut seen = vec![root];
    let mut i = 0;
    while i < seen.len() {
        for n in &p.instances[seen[i]].nodes {
            let next = match &n.op {
                Op::Call { instance, .. } => Some(*instance),
                Op::Scan { body, .. } => Some(*body),
                _ => None,
            };
            if let Some(x) = next
                && !seen.contains(&x)
            {
                seen.push(x);
            }
        }
        i += 1;
    }
    seen
}

#[test]
fn the_lstm_is_a_scan_in_mlx_source() {
    if !fashion() {
        return;
    }
    let p = checked("fashion_lstm.mlx", &[]);
    let t = &p.trains[0];
    let used = reachable(&p, t.instance);
    let lstm: Vec<&hir::Instance> = used
        .iter()
        .map(|i| &p.instances[*i])
        .filter(|i| i.model == "lstm")
        .collect();
    assert_eq!(lstm.len(), 1);
    assert_eq!(lstm[0].signature, "hidden=128");
    let scans = lstm[0]
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Scan { .. }))
        .count();
    assert_eq!(scans, 1);
    assert_eq!(lstm[0].params.len(), 6);
    assert_eq!(
        result_shape(&p, t.instance),
        vec![Dim::sym("B"), Dim::constant(10)]
    );
    assert_eq!(t.clip_grad, Some(1.0));
}

#[test]
fn sweeps_expand_and_check_every_point() {
    let p = checked("penguins_sweep.mlx", &[]);
    let s = &p.sweeps[0];
    assert_eq!(s.points.len(), 6);
    assert_eq!(s.trains.len(), 6);
    assert_eq!(
        s.points[1],
        vec![
            ("optimizer.lr".to_string(), "0.003".to_string()),
            ("model.hidden".to_string(), "64".to_string())
        ]
    );
    assert_eq!(s.trains[1].model_call, "classifier(hidden: 64)");
    assert!(matches!(s.trains[5].optimizer, hir::Optimizer::Adam { lr, .. } if lr == 0.03));
    assert!(s.maximize);
    // The sweep file runs its sweep, not the train it imports.
    assert!(p.root_trains.is_empty());
    assert_eq!(p.root_sweeps, vec!["penguins_search".to_string()]);
}

#[test]
fn set_overrides_reach_consts_entries_and_arguments() {
    let p = checked(
        "penguins.mlx",
        &["epochs=2", "optimizer.lr=0.003", "model.hidden=8"],
    );
    let t = &p.trains[0];
    assert_eq!(t.epochs, 2);
    assert!(matches!(t.optimizer, hir::Optimizer::Adam { lr, .. } if lr == 0.003));
    assert_eq!(t.model_call, "classifier(hidden: 8)");
}

#[test]
fn kfold_regression_plan() {
    let p = checked("diabetes.mlx", &[]);
    let d = &p.datasets[0];
    assert_eq!(
        d.split,
        hir::Split::KFold {
            k: 5,
            stratify: false
        }
    );
    assert_eq!(d.feature_shape, vec![10]);
    assert_eq!(d.target.kind, hir::TargetKind::Regression);
    assert!(
        matches!(p.trains[0].optimizer, hir::Optimizer::Sgd { lr, momentum, .. } if lr == 0.005 && momentum == 0.9)
    );
}
