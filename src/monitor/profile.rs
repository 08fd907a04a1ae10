//! Profiles and drift: takes raw rows (a `Sample`: each input column's values as they came,
//! before preprocessing, and the model's answers) and gives the reference profile written at
//! train time, or a drift report of new rows against it. `mlx monitor` and `mlx serve`
//! share this one computation, so the endpoint and the command agree on the same rows.

use super::stats::{self, IMAGE_BINS};
use crate::data::Data;
use crate::data::load::{Column, MISSING};
use crate::data::preprocess::{FeatureKind, Preprocessor};
use crate::rundir::{ColumnProfile, ColumnStats, PredictionProfile, Profile};
use serde::Serialize;
use std::collections::BTreeMap;

/// One column's raw values.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// NaN = missing.
    Number(Vec<f64>),
    /// Each row's level as an index into `levels` (`MISSING_LEVEL`: missing): a `String` per
    /// row cost ~50 bytes a value on a training set of millions of rows.
    Category {
        levels: Vec<String>,
        codes: Vec<u32>,
    },
    /// Per row, `channels * IMAGE_BINS` pixel counts.
    Image {
        channels: usize,
        rows: Vec<Vec<u32>>,
    },
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Number(v) => v.len(),
            Values::Category { codes, .. } => codes.len(),
            Values::Image { rows, .. } => rows.len(),
        }
    }

    fn drain_front(&mut self, n: usize) {
        match self {
            Values::Number(v) => drop(v.drain(..n)),
            Values::Category { codes, .. } => drop(codes.drain(..n)),
            Values::Image { rows, .. } => drop(rows.drain(..n)),
        }
    }
}

/// A model's answer for one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answer {
    Class(usize),
    Value(f64),
    /// No prediction (a value the model needs was missing).
    None,
}

/// Raw rows: every input column, and the model's answers when known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub columns: Vec<(String, Values)>,
    pub answers: Vec<Answer>,
}

impl Sample {
    /// An empty sample with the columns of `pre`.
    pub fn empty(pre: &Preprocessor) -> Sample {
        let columns = pre
            .features
            .iter()
            .map(|f| {
                let v = match &f.kind {
                    FeatureKind::Numeric => Values::Number(Vec::new()),
                    FeatureKind::Category => Values::Category {
                        levels: Vec::new(),
                        codes: Vec::new(),
                    },
                    FeatureKind::Tensor { shape } => Values::Image {
                        channels: channels(shape),
                        rows: Vec::new(),
                    },
                };
                (f.column.clone(), v)
            })
            .collect();
        Sample {
            columns,
            answers: Vec::new(),
        }
    }

    /// The raw values of `rows` of `data`.
    pub fn of(pre: &Preprocessor, data: &Data, rows: &[usize]) -> Sample {
        let mut s = Sample::empty(pre);
        s.push(data, rows);
        s
    }

    /// Rows of the sample.
    pub fn len(&self) -> usize {
        self.columns
            .first()
            .map_or(self.answers.len(), |(_, v)| v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append the raw values of `rows` of `data` (columns it lacks count as missing).
    pub fn push(&mut self, data: &Data, rows: &[usize]) {
        for (name, values) in &mut self.columns {
            let col = data.column(name);
            match (values, col) {
                (Values::Number(v), Some(Column::Numeric(xs))) => {
                    v.extend(rows.iter().map(|r| xs[*r]));
                }
                (
                    Values::Category {
                        levels: mine,
                        codes: v,
                    },
                    Some(Column::Category { codes, levels }),
                ) => {
                    // The data's levels as this sample's (new ones added).
                    let map: Vec<u32> = levels
                        .iter()
                        .map(|l| match mine.iter().position(|m| m == l) {
                            Some(k) => k as u32,
                            None => {
                                mine.push(l.clone());
                                (mine.len() - 1) as u32
                            }
                        })
                        .collect();
                    v.extend(rows.iter().map(|r| {
                        let c = codes[*r];
                        if c == MISSING {
                            MISSING_LEVEL
                        } else {
                            map[c as usize]
                        }
                    }));
                }
                (Values::Image { channels, rows: v }, Some(Column::Image { size, pixels })) => {
                    let per = (*size / (*channels).max(1)).max(1);
                    v.extend(rows.iter().map(|r| {
                        let mut h = vec![0u32; *channels * IMAGE_BINS];
                        for (i, p) in pixels[r * size..(r + 1) * size].iter().enumerate() {
                            let c = (i / per).min(*channels - 1);
                            h[c * IMAGE_BINS + *p as usize * IMAGE_BINS / 256] += 1;
                        }
                        h
                    }));
                }
                (Values::Number(v), _) => v.extend(rows.iter().map(|_| f64::NAN)),
                (Values::Category { codes, .. }, _) => {
                    codes.extend(rows.iter().map(|_| MISSING_LEVEL));
                }
                (Values::Image { channels, rows: v }, _) => {
                    v.extend(rows.iter().map(|_| vec![0; *channels * IMAGE_BINS]));
                }
            }
        }
    }

    /// Keep the last `n` rows (and answers).
    pub fn keep_last(&mut self, n: usize) {
        let len = self.len();
        if len > n {
            for (_, v) in &mut self.columns {
                v.drain_front(len - n);
            }
        }
        let a = self.answers.len();
        if a > n {
            self.answers.drain(..a - n);
        }
    }
}

fn channels(shape: &[usize]) -> usize {
    if shape.len() >= 3 { shape[0].max(1) } else { 1 }
}

/// The answers of model outputs (`k` values a row; `classes`: whether they are
/// probabilities).
pub fn answers(outputs: &[f32], k: usize, classes: bool) -> Vec<Answer> {
    outputs
        .chunks(k.max(1))
        .map(|row| {
            if !row.iter().all(|v| v.is_finite()) {
                Answer::None
            } else if classes {
                Answer::Class(crate::predict::argmax(row))
            } else {
                Answer::Value(f64::from(row[0]))
            }
        })
        .collect()
}

fn present(v: &[f64]) -> usize {
    v.iter().filter(|x| x.is_finite()).count()
}

fn rate(missing: usize, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        missing as f64 / n as f64
    }
}

/// Category levels and their counts, sorted by level.
/// A missing value in `Values::Category`.
const MISSING_LEVEL: u32 = u32::MAX;

fn level_counts<'l>(levels: &'l [String], codes: &[u32]) -> BTreeMap<&'l str, u64> {
    let mut n = vec![0u64; levels.len()];
    for &c in codes {
        if let Some(k) = n.get_mut(c as usize) {
            *k += 1;
        }
    }
    levels
        .iter()
        .zip(n)
        .filter(|(_, k)| *k > 0)
        .map(|(l, k)| (l.as_str(), k))
        .collect()
}

fn image_counts(channels: usize, rows: &[Vec<u32>]) -> Vec<Vec<u64>> {
    let mut c = vec![vec![0u64; IMAGE_BINS]; channels];
    for r in rows {
        for (i, n) in r.iter().enumerate() {
            c[i / IMAGE_BINS][i % IMAGE_BINS] += u64::from(*n);
        }
    }
    c
}

/// The reference profile of the training rows `train` and the validation answers.
pub fn profile(
    name: &str,
    train: &Sample,
    validation: &[Answer],
    classes: Option<usize>,
) -> Profile {
    Profile {
        format: crate::rundir::FORMAT,
        train: name.to_string(),
        rows: train.len(),
        columns: train
            .columns
            .iter()
            .map(|(name, values)| column_profile(name, values))
            .collect(),
        predictions: prediction_profile(validation, classes),
    }
}

/// `profile` of `rows` of `data`, one column at a time: only one column's raw values are
/// copied at once (a training set of millions of rows is not duplicated whole).
pub fn profile_rows(
    name: &str,
    pre: &Preprocessor,
    data: &Data,
    rows: &[usize],
    validation: &[Answer],
    classes: Option<usize>,
) -> Profile {
    let columns = Sample::empty(pre)
        .columns
        .into_iter()
        .map(|column| {
            let mut one = Sample {
                columns: vec![column],
                answers: Vec::new(),
            };
            one.push(data, rows);
            let (name, values) = &one.columns[0];
            column_profile(name, values)
        })
        .collect();
    Profile {
        format: crate::rundir::FORMAT,
        train: name.to_string(),
        rows: rows.len(),
        columns,
        predictions: prediction_profile(validation, classes),
    }
}

fn column_profile(name: &str, values: &Values) -> ColumnProfile {
    let n = values.len();
    let (count, kind) = match values {
        Values::Number(v) => (present(v), ColumnStats::Number(stats::number_stats(v))),
        Values::Category { levels, codes } => {
            let m = level_counts(levels, codes);
            (
                m.values().sum::<u64>() as usize,
                ColumnStats::Category {
                    levels: m.keys().map(|s| s.to_string()).collect(),
                    counts: m.values().copied().collect(),
                },
            )
        }
        Values::Image { channels, rows } => (
            rows.len(),
            ColumnStats::Image {
                channels: *channels,
                bins: IMAGE_BINS,
                counts: image_counts(*channels, rows),
            },
        ),
    };
    ColumnProfile {
        name: name.to_string(),
        count,
        missing_rate: rate(n - count, n),
        kind,
    }
}

fn prediction_profile(a: &[Answer], classes: Option<usize>) -> Option<PredictionProfile> {
    let rows = a.iter().filter(|x| !matches!(x, Answer::None)).count();
    if rows == 0 {
        return None;
    }
    Some(match classes {
        Some(k) => PredictionProfile::Class {
            rows,
            counts: class_counts(a, k),
        },
        None => PredictionProfile::Value {
            rows,
            stats: stats::number_stats(&values(a)),
        },
    })
}

fn class_counts(a: &[Answer], k: usize) -> Vec<u64> {
    let mut c = vec![0u64; k];
    for x in a {
        if let Answer::Class(i) = x
            && *i < k
        {
            c[*i] += 1;
        }
    }
    c
}

fn values(a: &[Answer]) -> Vec<f64> {
    a.iter()
        .filter_map(|x| match x {
            Answer::Value(v) => Some(*v),
            _ => None,
        })
        .collect()
}

/// Limits past which a statistic marks a column as drifted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Thresholds(pub BTreeMap<String, f64>);

/// The statistics `--fail-on` and the flags know, with what each measures.
pub const METRICS: [(&str, &str); 7] = [
    ("psi", "population stability index of a column's histogram"),
    ("ks", "Kolmogorov-Smirnov statistic of a number column"),
    (
        "chi2_p",
        "chi-square p-value of a category column (flags when below)",
    ),
    ("missing", "change of the missing rate (absolute)"),
    ("range", "share of numbers outside the training range"),
    ("unseen", "share of category values not seen in training"),
    (
        "prediction_psi",
        "population stability index of the model's answers",
    ),
];

impl Default for Thresholds {
    /// PSI 0.2 (the usual mark of a shifted distribution), 10 points more or fewer missing
    /// values, 5% out of the training range, 1% unseen levels. KS and chi-square are reported
    /// but flag only when asked (`--fail-on ks=0.1`): on thousands of rows they call
    /// practically identical distributions different.
    fn default() -> Thresholds {
        Thresholds(
            [
                ("psi", 0.2),
                ("missing", 0.1),
                ("range", 0.05),
                ("unseen", 0.01),
                ("prediction_psi", 0.2),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        )
    }
}

impl Thresholds {
    /// `--fail-on psi=0.2,ks=0.1`: the named limits only.
    pub fn parse(text: &str) -> Result<Thresholds, String> {
        let mut m = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("`{part}` is not NAME=LIMIT"));
            };
            let k = k.trim();
            if !METRICS.iter().any(|(m, _)| *m == k) {
                let known: Vec<&str> = METRICS.iter().map(|(m, _)| *m).collect();
                return Err(format!(
                    "unknown drift statistic `{k}`; known: {}",
                    known.join(", ")
                ));
            }
            let v: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("the limit of `{k}` must be a number of at least 0"))?;
            m.insert(k.to_string(), v);
        }
        if m.is_empty() {
            return Err("no limit given (e.g. `--fail-on psi=0.2,unseen=0.01`)".into());
        }
        Ok(Thresholds(m))
    }

    /// Whether `value` of `metric` is past its limit (none set: never).
    fn past(&self, metric: &str, value: Option<f64>) -> bool {
        match (self.0.get(metric), value) {
            (Some(limit), Some(v)) if metric == "chi2_p" => v < *limit,
            (Some(limit), Some(v)) => v > *limit,
            _ => false,
        }
    }
}

/// `drift.json` and the serve endpoint's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub format: u32,
    pub train: String,
    /// Rows compared against the reference.
    pub rows: usize,
    pub reference_rows: usize,
    pub thresholds: BTreeMap<String, f64>,
    /// Names of the columns (and `predictions`) past a threshold.
    pub drifted: Vec<String>,
    pub columns: Vec<ColumnDrift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictions: Option<PredictionDrift>,
    /// The model's figures on the new rows (when they hold the target) beside the run's test
    /// figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    pub new: crate::rundir::Figures,
    pub test: Option<crate::rundir::Figures>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ColumnDrift {
    pub name: String,
    pub kind: &'static str,
    pub missing_rate: f64,
    pub reference_missing_rate: f64,
    pub psi: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2_p: Option<f64>,
    /// Share of present numbers below the training minimum or above its maximum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_range: Option<f64>,
    /// Share of present category values not among the training levels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unseen_levels: Vec<(String, u64)>,
    /// The histogram: bin labels, reference counts, new counts.
    pub bins: Vec<String>,
    pub reference: Vec<u64>,
    pub new: Vec<u64>,
    /// The statistics past their thresholds.
    pub flags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PredictionDrift {
    pub psi: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    pub bins: Vec<String>,
    pub reference: Vec<u64>,
    pub new: Vec<u64>,
    pub flags: Vec<String>,
}

fn edge_labels(edges: &[f64]) -> Vec<String> {
    let mut out = Vec::with_capacity(edges.len() + 1);
    for i in 0..=edges.len() {
        out.push(match (i.checked_sub(1).map(|j| edges[j]), edges.get(i)) {
            (None, Some(hi)) => format!("<= {hi}"),
            (Some(lo), Some(hi)) => format!("({lo}, {hi}]"),
            (Some(lo), None) => format!("> {lo}"),
            (None, None) => "all".into(),
        });
    }
    out
}

/// Drift of `new` against `profile`, flagged by `limits`; `classes` names the answers' bins.
pub fn drift(
    profile: &Profile,
    new: &Sample,
    limits: &Thresholds,
    classes: Option<&[String]>,
) -> Report {
    let mut columns = Vec::new();
    for p in &profile.columns {
        let Some((_, values)) = new.columns.iter().find(|(n, _)| *n == p.name) else {
            continue;
        };
        let n = values.len();
        let mut d = ColumnDrift {
            name: p.name.clone(),
            kind: "number",
            missing_rate: 0.0,
            reference_missing_rate: p.missing_rate,
            psi: 0.0,
            ks: None,
            ks_p: None,
            chi2: None,
            chi2_p: None,
            out_of_range: None,
            unseen: None,
            unseen_levels: Vec::new(),
            bins: Vec::new(),
            reference: Vec::new(),
            new: Vec::new(),
            flags: Vec::new(),
        };
        match (&p.kind, values) {
            (ColumnStats::Number(s), Values::Number(v)) => {
                let sorted = stats::sorted(v);
                d.missing_rate = rate(n - sorted.len(), n);
                d.new = stats::histogram(&s.edges, &sorted);
                d.reference = s.counts.clone();
                d.bins = edge_labels(&s.edges);
                d.psi = stats::psi(&d.reference, &d.new);
                let k = stats::ks(&s.quantiles, &sorted);
                d.ks = Some(k);
                d.ks_p = Some(stats::ks_p(k, p.count, sorted.len()));
                let outside = sorted.iter().filter(|x| **x < s.min || **x > s.max).count();
                d.out_of_range = Some(rate(outside, sorted.len()));
            }
            (
                ColumnStats::Category { levels, counts },
                Values::Category {
                    levels: seen,
                    codes,
                },
            ) => {
                d.kind = "category";
                let m = level_counts(seen, codes);
                let present: u64 = m.values().sum();
                d.missing_rate = rate(n - present as usize, n);
                let mut newc: Vec<u64> = levels
                    .iter()
                    .map(|l| m.get(l.as_str()).copied().unwrap_or(0))
                    .collect();
                d.unseen_levels = m
                    .iter()
                    .filter(|(l, _)| !levels.iter().any(|x| x == *l))
                    .map(|(l, c)| (l.to_string(), *c))
                    .collect();
                let unseen: u64 = d.unseen_levels.iter().map(|(_, c)| c).sum();
                d.unseen = Some(rate(unseen as usize, present as usize));
                let mut refc = counts.clone();
                d.bins = levels.clone();
                // Unseen levels are one more bin, empty in the reference.
                refc.push(0);
                newc.push(unseen);
                d.bins.push("(unseen)".into());
                d.psi = stats::psi(&refc, &newc);
                let (chi, _, pv) = stats::chi_square(&refc, &newc);
                d.chi2 = Some(chi);
                d.chi2_p = Some(pv);
                d.reference = refc;
                d.new = newc;
            }
            (
                ColumnStats::Image {
                    channels, counts, ..
                },
                Values::Image { rows, .. },
            ) => {
                d.kind = "image";
                let newc = image_counts(*channels, rows);
                // The channel that moved most speaks for the image.
                let (c, psi) = (0..*channels)
                    .map(|c| (c, stats::psi(&counts[c], &newc[c])))
                    .fold((0, 0.0), |b, x| if x.1 > b.1 { x } else { b });
                d.psi = psi;
                d.bins = (0..IMAGE_BINS)
                    .map(|b| {
                        format!(
                            "ch{c} {}..{}",
                            b * 256 / IMAGE_BINS,
                            (b + 1) * 256 / IMAGE_BINS - 1
                        )
                    })
                    .collect();
                d.reference = counts.get(c).cloned().unwrap_or_default();
                d.new = newc.get(c).cloned().unwrap_or_default();
            }
            _ => continue,
        }
        for (metric, value) in [
            ("psi", Some(d.psi)),
            ("ks", d.ks),
            ("chi2_p", d.chi2_p),
            (
                "missing",
                Some((d.missing_rate - d.reference_missing_rate).abs()),
            ),
            ("range", d.out_of_range),
            ("unseen", d.unseen),
        ] {
            if n > 0 && limits.past(metric, value) {
                d.flags.push(metric.to_string());
            }
        }
        columns.push(d);
    }
    let predictions = profile
        .predictions
        .as_ref()
        .and_then(|p| prediction_drift(p, &new.answers, limits, classes));
    let mut drifted: Vec<String> = columns
        .iter()
        .filter(|c| !c.flags.is_empty())
        .map(|c| c.name.clone())
        .collect();
    if predictions.as_ref().is_some_and(|p| !p.flags.is_empty()) {
        drifted.push("predictions".into());
    }
    Report {
        format: crate::rundir::FORMAT,
        train: profile.train.clone(),
        rows: new.len(),
        reference_rows: profile.rows,
        thresholds: limits.0.clone(),
        drifted,
        columns,
        predictions,
        figures: None,
    }
}

fn prediction_drift(
    p: &PredictionProfile,
    a: &[Answer],
    limits: &Thresholds,
    classes: Option<&[String]>,
) -> Option<PredictionDrift> {
    if a.iter().all(|x| matches!(x, Answer::None)) {
        return None;
    }
    let mut d = match p {
        PredictionProfile::Class { counts, .. } => {
            let new = class_counts(a, counts.len());
            PredictionDrift {
                psi: stats::psi(counts, &new),
                ks: None,
                bins: (0..counts.len())
                    .map(|i| {
                        classes
                            .and_then(|c| c.get(i))
                            .cloned()
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect(),
                reference: counts.clone(),
                new,
                flags: Vec::new(),
            }
        }
        PredictionProfile::Value { stats: s, .. } => {
            let v = stats::sorted(&values(a));
            let new = stats::histogram(&s.edges, &v);
            PredictionDrift {
                psi: stats::psi(&s.counts, &new),
                ks: Some(stats::ks(&s.quantiles, &v)),
                bins: edge_labels(&s.edges),
                reference: s.counts.clone(),
                new,
                flags: Vec::new(),
            }
        }
    };
    if limits.past("prediction_psi", Some(d.psi)) {
        d.flags.push("prediction_psi".into());
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-row pixel histograms of one channel: every pixel of a row in bin `b(row)`.
    fn images(rows: usize, b: impl Fn(usize) -> usize) -> Sample {
        Sample {
            columns: vec![(
                "image".into(),
                Values::Image {
                    channels: 1,
                    rows: (0..rows)
                        .map(|r| {
                            let mut h = vec![0u32; IMAGE_BINS];
                            h[b(r)] = 784;
                            h
                        })
                        .collect(),
                },
            )],
            answers: (0..rows).map(|r| Answer::Class(r % 3)).collect(),
        }
    }

    #[test]
    fn brighter_images_and_other_answers_are_flagged_and_the_same_images_are_not() {
        let train = images(600, |r| r % 8);
        let p = profile("t", &train, &train.answers, Some(3));
        let same = drift(&p, &images(300, |r| r % 8), &Thresholds::default(), None);
        assert!(same.drifted.is_empty(), "{same:?}");
        assert!(same.columns[0].psi < 0.01);
        // Every pixel four bins brighter, and one class always.
        let mut bright = images(300, |r| r % 8 + 4);
        bright.answers = vec![Answer::Class(0); 300];
        let r = drift(&p, &bright, &Thresholds::default(), None);
        assert_eq!(r.drifted, ["image", "predictions"]);
        assert_eq!(r.columns[0].kind, "image");
        // The window keeps the last rows.
        let mut w = images(10, |r| r % 8);
        w.keep_last(4);
        assert_eq!((w.len(), w.answers.len()), (4, 4));
        assert_eq!(w.answers[0], Answer::Class(6 % 3));
    }

    #[test]
    fn fail_on_limits_parse_or_say_why() {
        let t = Thresholds::parse("psi=0.3, ks=0.1").unwrap();
        assert_eq!(t.0.len(), 2);
        assert!(
            Thresholds::parse("psi=high")
                .unwrap_err()
                .contains("number")
        );
        assert!(
            Thresholds::parse("wobble=1")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(Thresholds::parse("").is_err());
        assert!(t.past("psi", Some(0.31)) && !t.past("psi", Some(0.3)));
        let p = Thresholds::parse("chi2_p=0.01").unwrap();
        assert!(p.past("chi2_p", Some(0.001)) && !p.past("chi2_p", Some(0.5)));
    }
}
