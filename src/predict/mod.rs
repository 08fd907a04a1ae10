//! Predictions from a trained run: takes a run directory and inputs (CSV, JSON Lines, images,
//! or a client's JSON rows) and gives each row's prediction, rendered as CSV or as the JSON
//! document `mlx serve` answers with. `mlx predict` and `mlx serve` share all of it, so a row
//! gets the same bytes from both.

pub mod input;
pub mod model;
pub mod slot;

pub use input::{InputError, Rows};
pub use model::{Failed, Model, ModelInfo, Reopened, ladder};

use crate::backend::BackendKind;
use crate::data::Data;
use crate::diagnostics::Diagnostic;
use crate::source::SourceMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// A category value never seen in training (encoded as all zeros, or -1 by `ordinal`).
#[derive(Clone, Debug, PartialEq)]
pub struct Unseen {
    pub row: usize,
    pub column: String,
    pub level: String,
}

/// The outputs of some rows, with what is worth saying about them.
pub struct Predicted {
    /// `out_len` values a row.
    pub outputs: Vec<f32>,
    /// Rows with a missing value the model cannot use (a `drop_missing` feature), in order,
    /// each with that feature: no prediction.
    pub unusable: Vec<(usize, String)>,
    pub unseen: Vec<Unseen>,
}

impl Predicted {
    pub fn is_unusable(&self, row: usize) -> bool {
        self.unusable.binary_search_by_key(&row, |u| u.0).is_ok()
    }
}

/// The model's rows from checked inputs; `origin` names the input in messages, a table's
/// line numbers count its rows from 1.
pub fn data_of(model: &ModelInfo, rows: Rows, origin: &Path) -> Result<Data, InputError> {
    let r = match rows {
        Rows::Table(t) => Data::for_prediction(&model.dataset, &t, origin, &model.input.missing),
        Rows::Images(px) => {
            let size = model.row_len.max(1);
            let n = px.len() / size;
            let origins: Vec<(PathBuf, usize)> =
                (1..=n).map(|i| (origin.to_path_buf(), i)).collect();
            Data::from_images(&model.dataset, px, &origins)
        }
    };
    r.map_err(|e| data_error(&e))
}

/// A data error as an input error (the line of a table is its row + 1).
fn data_error(e: &crate::data::DataError) -> InputError {
    let mut err = InputError::new("malformed", e.message.clone());
    if let Some(l) = e.line.filter(|l| *l > 0) {
        err.row = Some(l - 1);
    }
    err
}

/// Rows preprocessed for the model: its input values and what is worth saying about them.
pub struct Prepared {
    /// `row_len` values a row.
    pub x: Vec<f32>,
    /// Rows without a prediction, each with the `drop_missing` feature it lacks.
    pub unusable: Vec<(usize, String)>,
    pub unseen: Vec<Unseen>,
}

/// Apply the fitted preprocessing to every row of `data`.
pub fn prepare(model: &ModelInfo, data: &Data) -> Result<Prepared, InputError> {
    let rows: Vec<usize> = (0..data.len()).collect();
    let unseen = model
        .preprocessor
        .unseen(data, &rows)
        .into_iter()
        .map(|(row, column, level)| Unseen { row, column, level })
        .collect();
    let x = model.features(data).map_err(|e| data_error(&e))?;
    let unusable = data
        .unusable_rows()
        .iter()
        .map(|&r| (r, missing_feature(model, data, r).unwrap_or_default()))
        .collect();
    Ok(Prepared {
        x,
        unusable,
        unseen,
    })
}

/// The `drop_missing` feature whose value `row` lacks.
fn missing_feature(model: &ModelInfo, data: &Data, row: usize) -> Option<String> {
    model
        .dataset
        .features
        .iter()
        .filter(|f| f.steps.contains(&crate::check::hir::Step::DropMissing))
        .find(|f| match data.numeric(&f.column) {
            Some(xs) => xs.get(row).is_some_and(|x| x.is_nan()),
            None => data.category(&f.column, row).is_none(),
        })
        .map(|f| f.column.clone())
}

impl Prepared {
    /// The prepared rows with the model's outputs for them.
    pub fn with_outputs(self, outputs: Vec<f32>) -> Predicted {
        Predicted {
            outputs,
            unusable: self.unusable,
            unseen: self.unseen,
        }
    }
}

/// Shortest text that reads back as the same `f32`; `null` when not finite.
pub fn number(out: &mut String, v: f32) {
    if v.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(v));
    } else {
        out.push_str("null");
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// One row's prediction as JSON: `{"label": ..., "probabilities": {class: p, ...}}` for a
/// classifier (in class order), `{"value": x}` for a regression, `null` for a row without one.
pub fn prediction_json(out: &mut String, classes: Option<&[String]>, row: Option<&[f32]>) {
    let Some(row) = row.filter(|r| r.iter().all(|v| v.is_finite())) else {
        out.push_str("null");
        return;
    };
    match classes {
        Some(classes) => {
            let best = argmax(row);
            out.push_str("{\"label\":");
            json_string(out, classes.get(best).map_or("", String::as_str));
            out.push_str(",\"probabilities\":{");
            for (i, (c, p)) in classes.iter().zip(row).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, c);
                out.push(':');
                number(out, *p);
            }
            out.push_str("}}");
        }
        None => {
            out.push_str("{\"value\":");
            number(out, row.first().copied().unwrap_or(f32::NAN));
            out.push('}');
        }
    }
}

/// The first index of the largest value.
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |b, (j, v)| if *v > row[b] { j } else { b })
}

/// The JSON answer for predicted rows: `{"predictions": [...]}`, with `"warnings"` (unseen
/// categories, rows without a prediction) when there are any.
pub fn json_document(model: &ModelInfo, p: &Predicted) -> String {
    let k = model.out_len.max(1);
    let classes = model.input.classes();
    let mut out = String::with_capacity(64 + p.outputs.len() * 24);
    out.push_str("{\"predictions\":[");
    for (i, row) in p.outputs.chunks(k).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let usable = !p.is_unusable(i);
        prediction_json(&mut out, classes, usable.then_some(row));
    }
    out.push(']');
    let warnings = warnings(p);
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":[");
        for (i, (row, field, message)) in warnings.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"row\":{row},\"field\":");
            json_string(&mut out, field);
            out.push_str(",\"message\":");
            json_string(&mut out, message);
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// `(row, field, message)` for every unseen level and every row without a prediction.
fn warnings(p: &Predicted) -> Vec<(usize, String, String)> {
    let mut w: Vec<(usize, String, String)> = p
        .unseen
        .iter()
        .map(|u| {
            (
                u.row,
                u.column.clone(),
                format!(
                    "the level {:?} was not seen in training; it is encoded as unseen (all zeros for one_hot, -1 for ordinal)",
                    u.level
                ),
            )
        })
        .collect();
    for (r, field) in &p.unusable {
        w.push((
            *r,
            field.clone(),
            "a value the model needs is missing (the feature drops missing rows); no prediction"
                .into(),
        ));
    }
    w.sort_by_key(|x| x.0);
    w
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV answer: `prediction` and `p_<class>` columns (or `prediction` alone for a
/// regression); a row without a prediction is left empty. `names` adds a first `input` column.
pub fn csv_document(model: &ModelInfo, p: &Predicted, names: Option<&[String]>) -> String {
    let k = model.out_len.max(1);
    let mut csv = String::new();
    if names.is_some() {
        csv.push_str("input,");
    }
    csv.push_str("prediction");
    if let Some(classes) = model.input.classes() {
        for c in classes {
            let _ = write!(csv, ",{}", csv_field(&format!("p_{c}")));
        }
    }
    csv.push('\n');
    for (i, row) in p.outputs.chunks(k).enumerate() {
        if let Some(n) = names {
            csv.push_str(&csv_field(n.get(i).map_or("", String::as_str)));
            csv.push(',');
        }
        let usable = !p.is_unusable(i) && row.iter().all(|v| v.is_finite());
        match model.input.classes() {
            Some(classes) if usable => {
                csv.push_str(&csv_field(
                    classes.get(argmax(row)).map_or("", String::as_str),
                ));
                for v in row {
                    let _ = write!(csv, ",{v:.6}");
                }
            }
            Some(classes) => csv.push_str(&",".repeat(classes.len())),
            None if usable => {
                let _ = write!(csv, "{}", row[0]);
            }
            None => {}
        }
        csv.push('\n');
    }
    csv
}

/// How `mlx predict` writes its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown format `{s}`: choose csv or json")),
        }
    }
}

pub struct PredictOptions {
    pub backend: BackendKind,
    pub format: Format,
    /// Scale images of another size to the declared one.
    pub resize: bool,
    /// Use a run whose program or weights differ from its lock's (with a warning).
    pub ignore_lock: bool,
}

fn input_diagnostic(what: &Path, e: &InputError) -> Diagnostic {
    let code = match e.reason {
        "missing_field" => "mlx::data::column_missing",
        "image" => "mlx::data::shape",
        _ => "mlx::data::malformed",
    };
    Diagnostic::error(code, format!("{}: {}", what.display(), e.full_message()))
}

/// `mlx predict`: the predictions for CSV, Parquet or JSON Lines rows (tabular models) or PNG/JPEG
/// files, directories of them and IDX files (image models). Returns the document and warnings.
/// The rows of `inputs` for `model`: CSV, Parquet or JSON Lines (one file) for a tabular model; PNG or
/// JPEG files, directories of them, or IDX files for an image model, with each row's name.
pub fn read_inputs(
    model: &ModelInfo,
    inputs: &[PathBuf],
    resize: bool,
) -> Result<(Data, Option<Vec<String>>), Diagnostic> {
    let shown = inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (data, names) = if let Some((_, shape)) = model.input.image() {
        let (pixels, origins) = input::read_images(inputs, shape, resize).map_err(|m| {
            Diagnostic::error("mlx::data::shape", m)
                .with_help("give PNG or JPEG files of the declared size (or add `--resize`), a directory of them, or an IDX file")
        })?;
        let names: Vec<String> = origins
            .iter()
            .map(|(p, r)| {
                if input::is_image_file(p) {
                    p.display().to_string()
                } else {
                    format!("{}#{r}", p.display())
                }
            })
            .collect();
        let data =
            Data::from_images(&model.dataset, pixels, &origins).map_err(|e| e.diagnostic())?;
        (data, Some(names))
    } else {
        let [path] = inputs else {
            return Err(Diagnostic::error(
                "mlx::data::malformed",
                format!(
                    "a tabular model predicts one CSV, Parquet or JSON Lines file at a time, not {shown}"
                ),
            ));
        };
        let jsonl = path
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "ndjson");
        if jsonl {
            let text = crate::data::csv::read_text(path).map_err(|e| {
                crate::data::error::unreadable(path, e.line, &e.message).diagnostic()
            })?;
            let rows = input::from_json_lines(&model.input, &text)
                .map_err(|e| input_diagnostic(path, &e))?;
            let data = data_of(model, rows, path).map_err(|e| input_diagnostic(path, &e))?;
            (data, None)
        } else {
            let data = Data::load_for_predict(&model.dataset, path).map_err(|e| e.diagnostic())?;
            (data, None)
        }
    };
    Ok((data, names))
}

pub fn predict(
    dir: &Path,
    inputs: &[PathBuf],
    opts: &PredictOptions,
) -> Result<(String, Vec<String>), Failed> {
    let fail = |d: Diagnostic| (SourceMap::new(), vec![d]);
    let mut exe = Model::load(dir, opts.backend, None, opts.ignore_lock)?;
    let model = exe.info.clone();
    let shown = inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (data, names) = read_inputs(&model, inputs, opts.resize).map_err(fail)?;
    let prepared =
        prepare(&model, &data).map_err(|e| fail(input_diagnostic(Path::new(&shown), &e)))?;
    let outputs = exe.predict(&prepared.x).map_err(fail)?;
    let p = prepared.with_outputs(outputs);
    let mut warnings = Vec::new();
    let rows_with_unseen = {
        let mut r: Vec<usize> = p.unseen.iter().map(|u| u.row).collect();
        r.dedup();
        r
    };
    if !rows_with_unseen.is_empty() {
        let described = model.preprocessor.unseen_levels(&data, &rows_with_unseen);
        let shown: Vec<String> = described
            .iter()
            .take(5)
            .map(|(row, what)| format!("row {}: {what}", row + 1))
            .collect();
        let n = rows_with_unseen.len();
        warnings.push(format!(
            "{n} row{} have category levels never seen in training, encoded as all zeros ({}{})",
            if n == 1 { "" } else { "s" },
            shown.join("; "),
            if n > 5 { "; ..." } else { "" }
        ));
    }
    if !p.unusable.is_empty() {
        let n = p.unusable.len();
        warnings.push(format!(
            "{n} row{} have missing values the model cannot use (a `drop_missing` column); their prediction is left empty",
            if n == 1 { "" } else { "s" }
        ));
    }
    let doc = match opts.format {
        Format::Csv => csv_document(&model, &p, names.as_deref()),
        Format::Json => {
            let mut d = json_document(&model, &p);
            d.push('\n');
            d
        }
    };
    Ok((doc, warnings))
}
