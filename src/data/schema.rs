//! The schema of a data source, read at check time: CSV column names, types, missing counts
//! and category levels; IDX image dimensions and label range.

use super::{csv, idx};
use crate::check::hir::Loader;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// At most this many distinct values are kept as a column's levels.
pub const MAX_LEVELS: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum Schema {
    Csv(CsvSchema),
    Idx(IdxSchema),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvSchema {
    pub columns: Vec<Column>,
    pub rows: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// Every non-missing value parses as a number.
    pub numeric: bool,
    /// Every non-missing value is a whole number.
    pub integer: bool,
    pub missing: usize,
    /// Distinct non-missing values, sorted (numerically for numeric columns).
    pub levels: Vec<String>,
    pub levels_truncated: bool,
    /// The first value that is not a number, and its line: for "holds text" messages.
    pub first_text: Option<(String, usize)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdxSchema {
    pub images: usize,
    /// Dimensions of one image (`[28, 28]`).
    pub image_dims: Vec<usize>,
    pub labels: usize,
    pub max_label: u8,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SchemaError {
    pub path: PathBuf,
    /// 1-based line for CSV errors, 0 when the whole file is at fault.
    pub line: usize,
    pub message: String,
    pub missing_file: bool,
}

/// Is this text a missing value under the given tokens? Empty fields always are.
pub fn is_missing(v: &str, tokens: &[String]) -> bool {
    v.is_empty() || tokens.iter().any(|t| t == v)
}

/// Parse a number; `NaN` counts as missing (`None`).
pub fn parse_number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|x| !x.is_nan())
}

pub fn read(loader: &Loader) -> Result<Schema, SchemaError> {
    match loader {
        Loader::Csv { path, missing, sep } => {
            let t = csv::read(path, *sep).map_err(|e| SchemaError {
                path: path.clone(),
                line: e.line,
                missing_file: !path.exists(),
                message: e.message,
            })?;
            Ok(Schema::Csv(csv_schema(&t, missing)))
        }
        Loader::Idx { images, labels } => idx_schema(images, labels.as_deref()).map(Schema::Idx),
    }
}

pub fn csv_schema(t: &csv::Table, missing: &[String]) -> CsvSchema {
    let mut columns = Vec::with_capacity(t.header.len());
    for (j, name) in t.header.iter().enumerate() {
        let mut numeric = true;
        let mut integer = true;
        let mut miss = 0;
        let mut first_text = None;
        let mut levels: BTreeSet<&str> = BTreeSet::new();
        let mut truncated = false;
        for (i, row) in t.rows.iter().enumerate() {
            let v = row[j].as_str();
            if is_missing(v, missing) {
                miss += 1;
                continue;
            }
            match v.trim().parse::<f64>() {
                Ok(x) if x.is_nan() => {
                    miss += 1;
                    continue;
                }
                Ok(x) => integer &= x.fract() == 0.0,
                Err(_) => {
                    if numeric {
                        first_text = Some((v.to_string(), t.lines[i]));
                    }
                    numeric = false;
                    integer = false;
                }
            }
            if levels.len() < MAX_LEVELS {
                levels.insert(v);
            } else if !levels.contains(v) {
                truncated = true;
            }
        }
        let mut levels: Vec<String> = levels.into_iter().map(str::to_string).collect();
        if numeric {
            levels.sort_by(|a, b| {
                let (x, y) = (
                    parse_number(a).unwrap_or(0.0),
                    parse_number(b).unwrap_or(0.0),
                );
                x.total_cmp(&y)
            });
            // "1" and "1.0" are the same number: keep one spelling.
            levels.dedup_by(|a, b| parse_number(a) == parse_number(b));
        }
        columns.push(Column {
            name: name.clone(),
            numeric,
            integer,
            missing: miss,
            levels,
            levels_truncated: truncated,
            first_text,
        });
    }
    CsvSchema {
        columns,
        rows: t.rows.len(),
    }
}

fn idx_error(path: &Path, e: idx::IdxError) -> SchemaError {
    SchemaError {
        path: path.to_path_buf(),
        line: 0,
        missing_file: !path.exists(),
        message: e.message,
    }
}

fn idx_schema(images: &Path, labels: Option<&Path>) -> Result<IdxSchema, SchemaError> {
    let dims = idx::header(images).map_err(|e| idx_error(images, e))?;
    if dims.len() < 2 {
        return Err(SchemaError {
            path: images.to_path_buf(),
            line: 0,
            missing_file: false,
            message: format!(
                "an image file needs at least 2 dimensions (count, ...), but its header has {dims:?}"
            ),
        });
    }
    let Some(labels) = labels else {
        return Ok(IdxSchema {
            images: dims[0],
            image_dims: dims[1..].to_vec(),
            labels: 0,
            max_label: 0,
        });
    };
    let (ldims, ldata) = idx::load(labels).map_err(|e| idx_error(labels, e))?;
    if ldims.len() != 1 {
        return Err(SchemaError {
            path: labels.to_path_buf(),
            line: 0,
            missing_file: false,
            message: format!(
                "a label file has one dimension, but its header has {}",
                ldims.len()
            ),
        });
    }
    if ldims[0] != dims[0] {
        return Err(SchemaError {
            path: labels.to_path_buf(),
            line: 0,
            missing_file: false,
            message: format!(
                "{} labels for {} images in {}",
                ldims[0],
                dims[0],
                images.display()
            ),
        });
    }
    Ok(IdxSchema {
        images: dims[0],
        image_dims: dims[1..].to_vec(),
        labels: ldims[0],
        max_label: ldata.iter().copied().max().unwrap_or(0),
    })
}
