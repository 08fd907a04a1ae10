//! `mlx predict RUN --model NAME`: one model of a train with objectives applied to tensors as
//! the model saw them in training (a generator's latent vectors, a decoder's codes). Input
//! rows are JSON (`[[...], ...]` or `{"instances": [...]}`, each row a flat or nested array of
//! numbers) or CSV (one row of numbers per line, no header); the answer is the output tensor
//! of each row, as JSON (`{"predictions": [...]}`, nested as the output's shape) or CSV (one
//! flattened row per line).

use super::Format;
use super::model::{Failed, Reopened};
use crate::backend::{BackendKind, HostTensor};
use crate::diagnostics::Diagnostic;
use crate::source::SourceMap;
use crate::train::graph;
use serde_json::Value;
use std::path::Path;

/// Rows read from one input at most (a bound on memory: rows × row size is also checked).
const MAX_VALUES: usize = 1 << 28;

fn fail(d: Diagnostic) -> Failed {
    (SourceMap::new(), vec![d])
}

fn input_error(path: &Path, msg: String) -> Failed {
    fail(
        Diagnostic::error(
            "mlx::predict::input",
            format!("{}: {msg}", path.display()),
        )
        .with_help("give rows of numbers: JSON `[[0.1, ...], ...]` or `{\"instances\": [...]}`, or a CSV file with one row per line"),
    )
}

/// Flatten a JSON value of numbers into `out`; false when it holds something else.
pub fn flatten(v: &Value, out: &mut Vec<f32>) -> bool {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) => {
                out.push(x as f32);
                true
            }
            None => false,
        },
        Value::Array(xs) => xs.iter().all(|x| flatten(x, out)),
        _ => false,
    }
}

/// The rows of one input file, each `width` numbers.
fn read_rows(path: &Path, width: usize) -> Result<Vec<f32>, Failed> {
    let meta = std::fs::metadata(path)
        .map_err(|e| input_error(path, crate::data::csv::io_message(&e).to_string()))?;
    if meta.len() > (MAX_VALUES as u64) * 8 {
        return Err(input_error(
            path,
            format!("{} bytes is more than this command reads", meta.len()),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| input_error(path, crate::data::csv::io_message(&e).to_string()))?;
    let json =
        path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with(['[', '{']);
    let parsed = if json {
        let v: Value =
            serde_json::from_str(&text).map_err(|e| input_error(path, format!("not JSON: {e}")))?;
        let rows = match &v {
            Value::Object(o) => o.get("instances").cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        let Value::Array(rows) = rows else {
            return Err(input_error(path, "expected an array of rows".into()));
        };
        json_rows(&rows, width).map_err(|e| ("row", e))
    } else {
        csv_rows(&text, width)
            .map(|(x, _)| x)
            .map_err(|e| ("line", e))
    };
    parsed.map_err(|(what, e)| {
        input_error(
            path,
            match e.row {
                Some(r) => format!("{what} {} {}", r + 1, e.message),
                None => e.message,
            },
        )
    })
}

/// Why rows of numbers were refused: the row (from 0, a CSV's line), a reason for clients and
/// a message for people that follows the row's name (`row 3 has 2 numbers, ...`).
#[derive(Debug)]
pub struct RowError {
    pub row: Option<usize>,
    pub reason: &'static str,
    pub message: String,
}

impl RowError {
    fn at(row: usize, reason: &'static str, message: String) -> RowError {
        RowError {
            row: Some(row),
            reason,
            message,
        }
    }
}

/// Rows of `width` finite numbers from JSON instances, each a flat or nested array.
pub fn json_rows(rows: &[Value], width: usize) -> Result<Vec<f32>, RowError> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let before = out.len();
        if !flatten(r, &mut out) {
            return Err(RowError::at(
                i,
                "shape",
                "is not an array of numbers".into(),
            ));
        }
        row_done(&out[before..], i, width)?;
    }
    Ok(out)
}

/// Rows of `width` finite numbers from text, one row a line (blank lines skipped; rows are
/// counted by line, from 0); the values and the number of rows.
pub fn csv_rows(text: &str, width: usize) -> Result<(Vec<f32>, usize), RowError> {
    let mut out = Vec::new();
    let mut n = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let before = out.len();
        for f in line.split(',') {
            let x = f.trim().parse::<f32>().map_err(|_| {
                RowError::at(
                    i,
                    "not_a_number",
                    format!("holds `{}`, which is not a number", f.trim()),
                )
            })?;
            out.push(x);
        }
        row_done(&out[before..], i, width)?;
        n += 1;
    }
    Ok((out, n))
}

/// A row's width and values checked.
fn row_done(row: &[f32], i: usize, width: usize) -> Result<(), RowError> {
    if row.len() != width {
        return Err(RowError::at(
            i,
            "shape",
            format!(
                "has {} numbers, but a row of this model has {width}",
                row.len()
            ),
        ));
    }
    if row.iter().any(|x| !x.is_finite()) {
        return Err(RowError::at(
            i,
            "not_finite",
            "holds a value that is not a finite number".into(),
        ));
    }
    Ok(())
}

/// Nest a flat row as `shape` for JSON.
pub fn nested(xs: &[f32], shape: &[usize]) -> Value {
    match shape {
        [] | [_] => Value::Array(
            xs.iter()
                .map(|x| crate::train::run::json_number(f64::from(*x)))
                .collect(),
        ),
        [_, rest @ ..] => {
            let step: usize = rest.iter().product::<usize>().max(1);
            Value::Array(xs.chunks(step).map(|c| nested(c, rest)).collect())
        }
    }
}

/// The model `name` of a train with objectives; `code` names the command's diagnostic.
pub fn find<'p>(
    plan: &'p crate::check::hir::TrainPlan,
    name: &str,
    code: &'static str,
) -> Result<&'p crate::check::hir::ModelSlot, Failed> {
    let Some(multi) = &plan.multi else {
        return Err(fail(
            Diagnostic::error(
                code,
                format!("run `{}` has one model: `--model` chooses among the models of a train with objectives", plan.name),
            )
            .with_help("leave out `--model`"),
        ));
    };
    let names: Vec<&str> = multi.models.iter().map(|s| s.name.as_str()).collect();
    multi.models.iter().find(|s| s.name == name).ok_or_else(|| {
        let d = Diagnostic::error(
            code,
            format!("the run `{}` has no model `{name}`", plan.name),
        );
        fail(d.suggest_or(
            name,
            names.iter().copied(),
            format!("its models are: {}", names.join(", ")),
        ))
    })
}

pub fn predict(
    dir: &Path,
    name: &str,
    inputs: &[std::path::PathBuf],
    format: Format,
    backend: BackendKind,
    ignore_lock: bool,
) -> Result<String, Failed> {
    let r = Reopened::open(dir, ignore_lock)?;
    let (program, plan, _) = r.plans_any()?;
    let slot = find(plan, name, "mlx::predict::model")?;
    let batch = plan.batch.max(1);
    // Rows first, to know the batch sizes: one full batch and the rest.
    let (_, _, row) = graph::slot_program(program, plan, slot, &[1]).map_err(fail)?;
    let width: usize = row.iter().product::<usize>().max(1);
    let mut x = Vec::new();
    for p in inputs {
        x.extend(read_rows(p, width)?);
    }
    let n = x.len() / width;
    let sizes = crate::train::run::batch_sizes(n, batch);
    let (prog, fns, _) = graph::slot_program(program, plan, slot, &sizes).map_err(fail)?;
    let mut exe = r.compile_program(backend, &prog)?;
    let mut outs: Vec<f32> = Vec::new();
    let mut out_row: Vec<usize> = Vec::new();
    for chunk in x.chunks(batch * width) {
        let rows = chunk.len() / width;
        let f = *fns.get(&rows).ok_or_else(|| {
            fail(Diagnostic::internal(
                "no prediction function for this batch",
            ))
        })?;
        let mut shape = vec![rows];
        shape.extend(&row);
        let out = exe
            .run(f, &[HostTensor::f32(shape, chunk.to_vec())])
            .map_err(|e| fail(e.diagnostic()))?;
        let t = out
            .into_iter()
            .next()
            .ok_or_else(|| fail(Diagnostic::internal("a prediction without output")))?;
        out_row = t.shape[1..].to_vec();
        outs.extend(t.into_f32());
    }
    let w: usize = out_row.iter().product::<usize>().max(1);
    Ok(match format {
        Format::Json => {
            let preds: Vec<Value> = outs.chunks(w).map(|c| nested(c, &out_row)).collect();
            let doc =
                serde_json::json!({ "model": slot.name, "shape": out_row, "predictions": preds });
            format!("{doc}\n")
        }
        Format::Csv => {
            let mut s = String::new();
            for c in outs.chunks(w) {
                let mut first = true;
                for v in c {
                    if !first {
                        s.push(',');
                    }
                    first = false;
                    super::number(&mut s, *v);
                }
                s.push('\n');
            }
            s
        }
    })
}
