//! The run-directory module: documents round-trip, every read failure is its diagnostic, and
//! `open` tells runs, trials and sweeps apart.

use super::*;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mlx-rundir-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn summary() -> Summary {
    Summary {
        format: FORMAT,
        train: "t".into(),
        status: Some(Status::Completed),
        seed: Some(7),
        backend: Some("cpu".into()),
        epochs_run: Some(3),
        best_epoch: Some(2),
        unit: Some("round".into()),
        val: Some([("accuracy".to_string(), serde_json::json!(0.5))].into()),
        test: Some(Figures::new()),
        samples_per_second: Some(1000.0),
        wall_seconds: Some(1.5),
        ..Summary::default()
    }
}

#[test]
fn documents_round_trip_through_their_files() {
    let d = temp("round");
    let s = summary();
    write_doc(&d.join(SUMMARY), &s).unwrap();
    let r = open(&d).unwrap();
    assert_eq!(r.kind, Kind::Run);
    assert_eq!(r.summary().unwrap(), s);
    let input = InputSchema {
        format: FORMAT,
        train: "t".into(),
        features: vec![
            InputFeature {
                name: "x".into(),
                kind: InputKind::Number,
            },
            InputFeature {
                name: "c".into(),
                kind: InputKind::Category {
                    levels: vec!["a".into(), "b".into()],
                },
            },
        ],
        target: TargetSchema {
            name: "y".into(),
            kind: TargetSchemaKind::Class {
                classes: vec!["no".into(), "yes".into()],
            },
        },
        missing: vec!["NA".into()],
        separator: ',',
        batch: 32,
    };
    write_doc(&d.join(INPUT), &input).unwrap();
    assert_eq!(r.input().unwrap(), input);
    // The kinds are spelled for clients.
    let text = std::fs::read_to_string(d.join(INPUT)).unwrap();
    assert!(text.contains("\"kind\": \"category\""), "{text}");
    assert!(text.contains("\"levels\""), "{text}");
    let line = MetricsLine {
        epoch: Some(1),
        lr: Some(0.01),
        train: [("loss".to_string(), serde_json::json!(0.7))].into(),
        ..MetricsLine::default()
    };
    append_jsonl(&d.join(METRICS), &line).unwrap();
    append_jsonl(&d.join(METRICS), &line).unwrap();
    assert_eq!(r.metrics().unwrap(), vec![line.clone(), line.clone()]);
    assert_eq!(r.last_metrics(), Some(line));
}

#[test]
fn each_read_failure_is_a_diagnostic_naming_the_file() {
    let d = temp("fail");
    std::fs::write(d.join(SPEC), "").unwrap();
    let r = open(&d).unwrap();
    let e = r.summary().unwrap_err();
    assert_eq!(e.code, "mlx::rundir::missing");
    assert!(e.message.contains("summary.json"), "{}", e.message);
    std::fs::write(d.join(SUMMARY), "{\"train\": ").unwrap();
    let e = r.summary().unwrap_err();
    assert_eq!(e.code, "mlx::rundir::corrupt");
    std::fs::write(d.join(SUMMARY), r#"{"train": "t", "status": "exploded"}"#).unwrap();
    assert_eq!(r.summary().unwrap_err().code, "mlx::rundir::corrupt");
    std::fs::write(
        d.join(SUMMARY),
        format!(
            r#"{{"format": {}, "train": "t", "status": "completed"}}"#,
            FORMAT + 1
        ),
    )
    .unwrap();
    let e = r.summary().unwrap_err();
    assert_eq!(e.code, "mlx::rundir::format");
    assert!(e.message.contains("newer mlx"), "{}", e.message);
    // Written before formats were recorded: still read.
    std::fs::write(
        d.join(SUMMARY),
        r#"{"train": "t", "status": "failed", "error": "x"}"#,
    )
    .unwrap();
    let s = r.summary().unwrap();
    assert_eq!((s.format, s.status), (0, Some(Status::Failed)));
    assert_eq!(
        r.completed_summary().unwrap_err().code,
        "mlx::rundir::incomplete"
    );
    let e = r.input().unwrap_err();
    assert_eq!(e.code, "mlx::rundir::missing");
    assert!(e.help.unwrap_or_default().contains("train the model again"));
    std::fs::write(d.join(METRICS), "{\"epoch\": 1}\nnot json\n").unwrap();
    let e = r.metrics().unwrap_err();
    assert!(e.message.contains("line 2"), "{}", e.message);
}

#[test]
fn open_tells_runs_trials_and_sweeps_apart() {
    let d = temp("kinds");
    assert_eq!(
        open(&d.join("nope")).unwrap_err().code,
        "mlx::rundir::missing"
    );
    assert_eq!(open(&d).unwrap_err().code, "mlx::rundir::missing");
    let sweep = d.join("sw");
    let trial = sweep.join(TRIALS).join("t").join("20260101-000000");
    std::fs::create_dir_all(&trial).unwrap();
    std::fs::write(trial.join(lock::FILE), "{}").unwrap();
    let doc = SweepDoc {
        format: FORMAT,
        sweep: "sw".into(),
        best: Some(BestTrial {
            trial: 1,
            dir: Some(trial.display().to_string()),
            ..BestTrial::default()
        }),
        ..SweepDoc::default()
    };
    write_doc(&sweep.join(SWEEP), &doc).unwrap();
    let s = open(&sweep).unwrap();
    assert_eq!(s.kind, Kind::Sweep);
    assert_eq!(s.sweep().unwrap(), doc);
    let e = s.require_run().unwrap_err();
    assert!(e.message.contains("sweep directory"), "{}", e.message);
    assert!(e.help.unwrap_or_default().contains("the best is"));
    assert_eq!(
        open(&trial).unwrap().kind,
        Kind::Trial {
            sweep: sweep.clone()
        }
    );
}

#[test]
fn one_writer_at_a_time_and_the_refusal_names_the_holder() {
    let d = temp("writer");
    let first = lock_for_writing(&d, "mlx run `t`").unwrap();
    let e = lock_for_writing(&d, "mlx resume").unwrap_err();
    assert_eq!(e.code, "mlx::rundir::locked");
    assert!(
        e.message
            .contains(&format!("process {}: mlx run `t`", std::process::id())),
        "{}",
        e.message
    );
    drop(first);
    let again = lock_for_writing(&d, "mlx resume").unwrap();
    drop(again);
}

#[test]
fn the_writer_removes_temporaries_a_killed_write_left_behind() {
    let d = temp("stale");
    for f in [
        ".checkpoint.safetensors.tmp-4242",
        ".summary.json.tmp-7",
        ".x.tmp-abc",
        "notes.tmp-1",
    ] {
        std::fs::write(d.join(f), "x").unwrap();
    }
    let _w = lock_for_writing(&d, "mlx resume").unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".x.tmp-abc", "notes.tmp-1", WRITER]);
}

#[test]
fn temporary_directories_are_private_random_and_removed() {
    use std::os::unix::fs::PermissionsExt;
    let a = TempDir::new("mlx-test-").unwrap();
    let b = TempDir::new("mlx-test-").unwrap();
    assert_ne!(a.path(), b.path());
    let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let pa = a.path().to_path_buf();
    std::fs::write(pa.join("f"), "x").unwrap();
    drop(a);
    assert!(!pa.exists());
    let kept = b.keep();
    assert!(kept.exists());
    std::fs::remove_dir_all(kept).unwrap();
}
