//! What `mlx serve` watches: a rolling window of the latest rows each model answered (raw
//! values and answers), compared on request with the run's reference profile by the same code
//! as `mlx monitor` (`GET /v1/models/NAME/drift`, and gauges in `/metrics`).

use crate::monitor::profile::{self, Answer, Report, Sample, Thresholds};
use crate::predict::model::ModelInfo;
use crate::rundir::Profile;
use std::fmt::Write as _;
use std::sync::Mutex;

pub struct Watch {
    profile: Profile,
    window: Mutex<Sample>,
    rows: usize,
}

impl Watch {
    /// A watch over the latest `rows` rows, when the run recorded a profile.
    pub fn new(info: &ModelInfo, rows: usize) -> Option<Watch> {
        let profile = info.run.profile().ok()?;
        Some(Watch {
            profile,
            window: Mutex::new(Sample::empty(&info.preprocessor)),
            rows: rows.max(1),
        })
    }

    /// Add answered rows (`data`'s, with their answers) to the window.
    pub fn record(&self, data: &crate::data::Data, answers: Vec<Answer>) {
        let rows: Vec<usize> = (0..data.len()).collect();
        let Ok(mut w) = self.window.lock() else {
            return;
        };
        w.push(data, &rows);
        w.answers.extend(answers);
        let keep = self.rows;
        w.keep_last(keep);
    }

    /// The window's drift against the profile, at the default limits.
    pub fn report(&self, info: &ModelInfo) -> Report {
        let sample = match self.window.lock() {
            Ok(w) => w.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut r = profile::drift(
            &self.profile,
            &sample,
            &Thresholds::default(),
            info.input.classes(),
        );
        r.train = info.name.clone();
        r
    }
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A gauge family: name, help, and the value of a column.
type Family = (
    &'static str,
    &'static str,
    fn(&profile::ColumnDrift) -> Option<f64>,
);

/// Prometheus gauges of each model's window.
pub fn gauges(reports: &[(String, Report)]) -> String {
    let mut o = String::new();
    let families: [Family; 5] = [
        (
            "mlx_drift_psi",
            "Population stability index of a column over the window.",
            |c| Some(c.psi),
        ),
        (
            "mlx_drift_missing_rate",
            "Share of missing values of a column over the window.",
            |c| Some(c.missing_rate),
        ),
        (
            "mlx_drift_out_of_range_share",
            "Share of a number column's values outside the training range.",
            |c| c.out_of_range,
        ),
        (
            "mlx_drift_unseen_share",
            "Share of a category column's values not seen in training.",
            |c| c.unseen,
        ),
        (
            "mlx_drift_flagged",
            "1 when a column is past a default drift threshold.",
            |c| Some(if c.flags.is_empty() { 0.0 } else { 1.0 }),
        ),
    ];
    for (name, help, get) in families {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (model, r) in reports {
            if r.rows == 0 {
                continue;
            }
            for c in &r.columns {
                if let Some(v) = get(c) {
                    let _ = writeln!(
                        o,
                        "{name}{{model=\"{}\",column=\"{}\"}} {v}",
                        label(model),
                        label(&c.name)
                    );
                }
            }
        }
    }
    let _ = writeln!(
        o,
        "# HELP mlx_drift_prediction_psi Population stability index of the model's answers over the window.\n# TYPE mlx_drift_prediction_psi gauge"
    );
    for (model, r) in reports {
        if let Some(p) = &r.predictions {
            let _ = writeln!(
                o,
                "mlx_drift_prediction_psi{{model=\"{}\"}} {}",
                label(model),
                p.psi
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP mlx_drift_window_rows Rows in the drift window.\n# TYPE mlx_drift_window_rows gauge"
    );
    for (model, r) in reports {
        let _ = writeln!(
            o,
            "mlx_drift_window_rows{{model=\"{}\"}} {}",
            label(model),
            r.rows
        );
    }
    o
}
