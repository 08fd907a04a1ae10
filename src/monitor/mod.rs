//! Drift monitoring: the reference profile written at train time (`profile`), the statistics
//! (`stats`), the plots (`plot`), and `mlx monitor`: new rows (CSV, JSON Lines or images, as
//! `mlx predict` reads them) against a run's profile, giving a table, `drift.json`, SVG plots
//! and, with `--fail-on`, a diagnostic for every column past a limit.

pub mod plot;
pub mod profile;
pub mod stats;

use crate::backend::BackendKind;
use crate::diagnostics::Diagnostic;
use crate::predict::model::{Failed, Model, Reopened};
use crate::predict::{self, prepare};
use crate::rundir::{self, InputSchema, TargetSchemaKind};
use crate::source::SourceMap;
use profile::{Report, Sample, Thresholds};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The drift report's file.
pub const DRIFT: &str = "drift.json";

pub struct Options {
    /// `--fail-on`: limits whose crossing is an error.
    pub fail_on: Option<Thresholds>,
    /// Where the report and plots go (default `RUN_DIR/monitor`).
    pub out: Option<PathBuf>,
    pub resize: bool,
    pub ignore_lock: bool,
    pub backend: BackendKind,
}

pub struct Monitored {
    pub report: Report,
    /// The table for standard output.
    pub table: String,
    pub out: PathBuf,
    /// One per drifted column when `--fail-on` was given.
    pub failures: Vec<Diagnostic>,
}

fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

/// The limits in force: the defaults, with `--fail-on`'s in their place.
pub fn limits(fail_on: Option<&Thresholds>) -> Thresholds {
    let mut t = Thresholds::default();
    if let Some(f) = fail_on {
        t.0.extend(f.0.clone());
    }
    t
}

/// `mlx monitor`.
pub fn monitor(dir: &Path, inputs: &[PathBuf], opts: &Options) -> Result<Monitored, Failed> {
    let mut model = Model::load(dir, opts.backend, None, opts.ignore_lock)?;
    let info = model.info.clone();
    let profile = info.run.profile().map_err(fail)?;
    let (data, _) = predict::read_inputs(&info, inputs, opts.resize).map_err(fail)?;
    let shown = inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if data.is_empty() {
        return Err(fail(
            Diagnostic::error(
                "mlx::monitor::empty",
                format!("{shown} holds no rows to compare with the training data"),
            )
            .with_help("give a file with a header and at least one row"),
        ));
    }
    let prepared = prepare(&info, &data).map_err(|e| {
        fail(Diagnostic::error(
            "mlx::data::value",
            format!("{shown}: {}", e.full_message()),
        ))
    })?;
    let outputs = model.predict(&prepared.x).map_err(fail)?;
    let classes = info.input.classes();
    let mut sample = Sample::of(
        &info.preprocessor,
        &data,
        &(0..data.len()).collect::<Vec<_>>(),
    );
    sample.answers = profile::answers(&outputs, info.out_len, classes.is_some());
    for (r, _) in &prepared.unusable {
        if let Some(a) = sample.answers.get_mut(*r) {
            *a = profile::Answer::None;
        }
    }
    let limits = limits(opts.fail_on.as_ref());
    let mut report = profile::drift(&profile, &sample, &limits, classes);

    // The model's figures on the new rows, when they hold the target.
    if let [path] = inputs
        && let Some(targets) = targets(&info.input, path)
    {
        let reopened = Reopened::open(dir, true)?;
        let (_, plan, dset) = reopened.plans()?;
        let k = info.out_len.max(1);
        let (mut outs, mut ys) = (Vec::new(), Vec::new());
        for (r, y) in targets.iter().enumerate() {
            let row = &outputs[r * k..(r + 1) * k];
            if let Some(y) = y
                && row.iter().all(|v| v.is_finite())
            {
                outs.extend_from_slice(row);
                ys.push(*y);
            }
        }
        if !ys.is_empty() {
            report.figures = Some(profile::Figures {
                new: crate::train::run::figures_of(plan, dset, &outs, &ys),
                test: info.summary.test.clone(),
            });
        }
    }

    let out = opts.out.clone().unwrap_or_else(|| info.run.path("monitor"));
    write_outputs(&out, &report).map_err(fail)?;
    let failures = match &opts.fail_on {
        Some(f) => failures(&report, f, &shown),
        None => Vec::new(),
    };
    Ok(Monitored {
        table: table(&report, &out),
        report,
        out,
        failures,
    })
}

/// Each row's target (class index or value) when the file has the target column: `None` for
/// a row whose target is missing or not a known class.
fn targets(input: &InputSchema, path: &Path) -> Option<Vec<Option<f32>>> {
    let name = &input.target.name;
    let raw: Vec<Option<String>> = if path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson")
    {
        let text = crate::data::csv::read_text(path).ok()?;
        let rows: Vec<serde_json::Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
            .collect();
        if !rows.iter().any(|r| r.get(name).is_some()) {
            return None;
        }
        rows.iter()
            .map(|r| match r.get(name) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    } else {
        let t = crate::data::sources::read_rows(path, input.separator).ok()?;
        let col = t.header.iter().position(|h| h == name)?;
        (0..t.len())
            .map(|r| {
                Some(t.get(r, col).to_string())
                    .filter(|v| !crate::data::schema::is_missing(v, &input.missing))
            })
            .collect()
    };
    Some(
        raw.into_iter()
            .map(|v| {
                let v = v?;
                match &input.target.kind {
                    TargetSchemaKind::Class { classes } => classes
                        .iter()
                        .position(|c| *c == v)
                        .or_else(|| {
                            let x = crate::data::schema::parse_number(&v)?;
                            classes
                                .iter()
                                .position(|c| crate::data::schema::parse_number(c) == Some(x))
                        })
                        .map(|i| i as f32),
                    TargetSchemaKind::Value => {
                        crate::data::schema::parse_number(&v).map(|x| x as f32)
                    }
                }
            })
            .collect(),
    )
}

fn write_outputs(out: &Path, report: &Report) -> Result<(), Diagnostic> {
    let io = |p: &Path, e: std::io::Error| {
        Diagnostic::error(
            "mlx::monitor::write",
            format!("cannot write {}: {e}", p.display()),
        )
    };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| Diagnostic::internal(format!("drift report: {e}")))?;
    let p = out.join(DRIFT);
    rundir::write_atomic(&p, format!("{json}\n").as_bytes()).map_err(|e| io(&p, e))?;
    let p = out.join("drift.svg");
    rundir::write_atomic(&p, plot::overview(report)?.as_bytes()).map_err(|e| io(&p, e))?;
    for c in report.columns.iter().filter(|c| !c.flags.is_empty()) {
        let safe: String = c
            .name
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' {
                    ch
                } else {
                    '_'
                }
            })
            .collect();
        let p = out.join(format!("drift-{safe}.svg"));
        rundir::write_atomic(&p, plot::column(report, c)?.as_bytes()).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.decimals$}"))
}

/// The table on standard output.
pub fn table(r: &Report, out: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} rows against {} training rows",
        r.train, r.rows, r.reference_rows
    );
    let w = r
        .columns
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(6)
        .max(13);
    let _ = writeln!(
        s,
        "{:<w$}  {:<8}  {:>6}  {:>6}  {:>8}  {:>15}  {:>8}  {:>7}  flags",
        "column", "kind", "psi", "ks", "chi2 p", "missing", "outside", "unseen"
    );
    for c in &r.columns {
        let _ = writeln!(
            s,
            "{:<w$}  {:<8}  {:>6.3}  {:>6}  {:>8}  {:>15}  {:>8}  {:>7}  {}",
            c.name,
            c.kind,
            c.psi,
            opt(c.ks, 3),
            opt(c.chi2_p, 4),
            format!(
                "{:.1}% -> {:.1}%",
                100.0 * c.reference_missing_rate,
                100.0 * c.missing_rate
            ),
            opt(c.out_of_range.map(|x| 100.0 * x), 1),
            opt(c.unseen.map(|x| 100.0 * x), 1),
            if c.flags.is_empty() {
                String::new()
            } else {
                format!("DRIFT ({})", c.flags.join(", "))
            }
        );
        if !c.unseen_levels.is_empty() {
            let levels: Vec<String> = c
                .unseen_levels
                .iter()
                .take(5)
                .map(|(l, n)| format!("{l:?} x{n}"))
                .collect();
            let _ = writeln!(s, "{:<w$}  unseen levels: {}", "", levels.join(", "));
        }
    }
    if let Some(p) = &r.predictions {
        let _ = writeln!(
            s,
            "{:<w$}  {:<8}  {:>6.3}  {:>6}  {}",
            "(predictions)",
            "answers",
            p.psi,
            opt(p.ks, 3),
            if p.flags.is_empty() {
                String::new()
            } else {
                format!("DRIFT ({})", p.flags.join(", "))
            }
        );
    }
    if let Some(f) = &r.figures {
        let _ = writeln!(s, "figures on these rows (beside the run's test split):");
        for (k, v) in &f.new {
            let Some(x) = v.as_f64() else { continue };
            let t = f
                .test
                .as_ref()
                .and_then(|t| t.get(k))
                .and_then(serde_json::Value::as_f64);
            let _ = writeln!(s, "  {k:<12} {x:>9.4}   test {}", opt(t, 4));
        }
    }
    let _ = writeln!(
        s,
        "drifted: {}",
        if r.drifted.is_empty() {
            "none".to_string()
        } else {
            r.drifted.join(", ")
        }
    );
    let _ = writeln!(s, "{}", out.join(DRIFT).display());
    s
}

/// A diagnostic per column past a `--fail-on` limit.
fn failures(r: &Report, fail_on: &Thresholds, shown: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for c in &r.columns {
        let past: Vec<String> = c
            .flags
            .iter()
            .filter(|f| fail_on.0.contains_key(f.as_str()))
            .map(|f| {
                let v = match f.as_str() {
                    "psi" => Some(c.psi),
                    "ks" => c.ks,
                    "chi2_p" => c.chi2_p,
                    "missing" => Some((c.missing_rate - c.reference_missing_rate).abs()),
                    "range" => c.out_of_range,
                    "unseen" => c.unseen,
                    _ => None,
                };
                format!("{f} {} (limit {})", opt(v, 4), fail_on.0[f.as_str()])
            })
            .collect();
        if !past.is_empty() {
            out.push(Diagnostic::error(
                "mlx::monitor::drift",
                format!(
                    "column `{}` of {shown} has drifted: {}",
                    c.name,
                    past.join(", ")
                ),
            ));
        }
    }
    if let Some(p) = &r.predictions
        && let Some(limit) = fail_on.0.get("prediction_psi")
        && !p.flags.is_empty()
    {
        out.push(Diagnostic::error(
            "mlx::monitor::drift",
            format!(
                "the model's answers on {shown} have drifted: prediction_psi {:.4} (limit {limit})",
                p.psi
            ),
        ));
    }
    out
}
