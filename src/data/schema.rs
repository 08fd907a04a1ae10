//! The schema of a data source, read at check time: CSV column names, types, missing counts
//! and category levels; IDX image dimensions and label range.

use super::{csv, idx};
use crate::check::hir::Loader;
use serde::{Deserialize, Serialize};
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
    /// A Parquet or SQL column of a type mlx does not read (its name): an error where a
    /// feature or the target uses the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<String>,
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
    /// The argument of the source call at fault, when not its file (`query` of `sql`).
    pub arg: Option<&'static str>,
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
            let err = |e: csv::CsvError| SchemaError {
                path: path.clone(),
                line: e.line,
                missing_file: !path.exists(),
                arg: None,
                message: e.message,
            };
            // One pass over the file, a block at a time, keeping only each column's
            // statistics (not the rows, not the text).
            let mut stats: Vec<Stats> = Vec::new();
            let mut rows = 0;
            let header = csv::scan_file_showing(path, *sep, true, |_, rec, line| {
                if stats.is_empty() {
                    stats = (0..rec.len()).map(|_| Stats::new()).collect();
                }
                for (st, v) in stats.iter_mut().zip(rec) {
                    st.add(v, line, missing);
                }
                rows += 1;
                Ok(())
            })
            .map_err(err)?;
            stats.resize_with(header.len(), Stats::new);
            Ok(Schema::Csv(CsvSchema {
                columns: header
                    .into_iter()
                    .zip(stats)
                    .map(|(name, st)| st.column(name))
                    .collect(),
                rows,
            }))
        }
        Loader::Idx { images, labels } => idx_schema(images, labels.as_deref()).map(Schema::Idx),
        Loader::Parquet { path } => super::sources::parquet_schema(path)
            .map(Schema::Csv)
            .map_err(|e| source_error(path, e, None)),
        Loader::Sql { url, query } => super::sources::sql_schema(url, query)
            .map(Schema::Csv)
            .map_err(|e| {
                let arg = if e.in_query { "query" } else { "url" };
                source_error(&super::sources::sql_name(url), e, Some(arg))
            }),
    }
}

fn source_error(
    path: &Path,
    e: super::sources::SourceError,
    arg: Option<&'static str>,
) -> SchemaError {
    SchemaError {
        path: path.to_path_buf(),
        line: 0,
        message: e.message,
        missing_file: e.missing_file,
        arg,
    }
}

/// What the schema records of one column, gathered value by value.
pub(crate) struct Stats {
    numeric: bool,
    integer: bool,
    missing: usize,
    first_text: Option<(String, usize)>,
    levels: std::collections::HashSet<String>,
    truncated: bool,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            numeric: true,
            integer: true,
            missing: 0,
            first_text: None,
            levels: std::collections::HashSet::new(),
            truncated: false,
        }
    }

    pub(crate) fn add(&mut self, v: &str, line: usize, missing: &[String]) {
        if is_missing(v, missing) {
            self.missing += 1;
            return;
        }
        match v.trim().parse::<f64>() {
            Ok(x) if x.is_nan() => {
                self.missing += 1;
                return;
            }
            Ok(x) => self.integer &= x.fract() == 0.0,
            Err(_) => {
                if self.numeric {
                    self.first_text = Some((v.to_string(), line));
                }
                self.numeric = false;
                self.integer = false;
            }
        }
        // Once past the limit, the column has too many levels to list: no more lookups.
        if self.truncated {
            return;
        }
        if !self.levels.contains(v) {
            if self.levels.len() < MAX_LEVELS {
                self.levels.insert(v.to_string());
            } else {
                self.truncated = true;
            }
        }
    }

    pub(crate) fn column(self, name: String) -> Column {
        let mut levels: Vec<String> = self.levels.into_iter().collect();
        levels.sort_unstable();
        if self.numeric {
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
        Column {
            name,
            numeric: self.numeric,
            integer: self.integer,
            missing: self.missing,
            levels,
            levels_truncated: self.truncated,
            first_text: self.first_text,
            unsupported: None,
        }
    }
}

fn idx_error(path: &Path, e: idx::IdxError) -> SchemaError {
    SchemaError {
        path: path.to_path_buf(),
        line: 0,
        missing_file: !path.exists(),
        arg: None,
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
            arg: None,
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
            arg: None,
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
            arg: None,
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
