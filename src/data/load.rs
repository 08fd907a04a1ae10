//! Loading a dataset plan's sources (CSV or IDX) into one in-memory pool of rows: feature
//! columns as numbers, category codes or image bytes, the target as class indices or values,
//! each row's source role and file line; `dedup` and `drop_missing` rows removed.

use super::error::{COLUMN_MISSING, DataError, LABEL, MALFORMED, VALUE, unreadable};
use super::schema::{is_missing, parse_number};
use super::{csv, idx};
use crate::check::hir::{ColumnKind, DatasetPlan, Loader, SourceRole, TargetKind};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The code of a missing category value.
pub(crate) const MISSING: u32 = u32::MAX;

/// One feature column of the pool.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Column {
    /// Numbers; `NaN` marks a missing value.
    Numeric(Vec<f64>),
    /// Indices into `levels` (`MISSING` when missing). `levels` starts with the plan's levels,
    /// in the plan's (sorted) order; values outside them are appended as they are met.
    Category {
        codes: Vec<u32>,
        levels: Vec<String>,
    },
    /// `size` bytes per row.
    Image { size: usize, pixels: Vec<u8> },
}

#[derive(Clone, Debug, PartialEq)]
enum Target {
    Class(Vec<u32>),
    Value(Vec<f64>),
    /// Prediction input: no target.
    Absent,
}

/// All rows of all sources of one dataset, after `dedup` and `drop_missing` row removal.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    names: Vec<String>,
    columns: Vec<Column>,
    target: Target,
    roles: Vec<SourceRole>,
    /// (source index into `paths`, 1-based line of a CSV file or record of an IDX file).
    origins: Vec<(u32, u32)>,
    paths: Vec<PathBuf>,
    unusable: Vec<usize>,
    /// The rows each SQL source returned, hashed (for `mlx.lock`).
    queried: Vec<QueriedRows>,
}

/// What a SQL source returned when it was loaded: its query and the sha256 of its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct QueriedRows {
    pub url: String,
    pub query: String,
    pub sha256: String,
}

impl Data {
    /// Load every source of the plan, in declaration order, into one pool.
    pub fn load(plan: &DatasetPlan) -> Result<Data, DataError> {
        let mut b = Builder::new(plan, false);
        let mut raws: Vec<Raw> = Vec::new();
        for s in &plan.sources {
            let raw = match &s.loader {
                Loader::Idx { images, labels } => {
                    b.add_idx(images, labels.as_deref(), s.role)?;
                    Raw::Idx
                }
                // Duplicates are found on the rows' text: keep it.
                Loader::Csv { path, missing, sep } if plan.dedup => {
                    let t =
                        csv::read(path, *sep).map_err(|e| unreadable(path, e.line, &e.message))?;
                    b.add_csv(&t, path, missing, s.role, false)?;
                    Raw::Csv(t)
                }
                Loader::Parquet { path } if plan.dedup => {
                    let t = super::sources::parquet_table(path)
                        .map_err(|e| unreadable(path, 0, &e.message))?;
                    b.add_csv(&t, path, &[], s.role, false)?;
                    Raw::Csv(t)
                }
                Loader::Sql { url, query } if plan.dedup => {
                    let name = super::sources::sql_name(url);
                    let (t, hash) = super::sources::sql_table(url, query)
                        .map_err(|e| unreadable(&name, 0, &e.message))?;
                    b.add_csv(&t, &name, &[], s.role, false)?;
                    b.data.queried.push(QueriedRows {
                        url: url.clone(),
                        query: query.clone(),
                        sha256: hash,
                    });
                    Raw::Csv(t)
                }
                loader => {
                    let queried = read_tables(loader, CHUNK, |t, origin, missing, continuing| {
                        b.add_csv(t, origin, missing, s.role, continuing)
                    })?;
                    b.data.queried.extend(queried);
                    Raw::Csv(csv::Table::default())
                }
            };
            raws.push(raw);
        }
        let mut keep: Vec<bool> = b.drop.iter().map(|d| !d).collect();
        if plan.dedup {
            b.mark_duplicates(&raws, &mut keep);
        }
        b.compact(&keep);
        Ok(b.data)
    }

    /// Load new rows for prediction from a CSV: every feature column must be present; any
    /// target column is ignored; no row is dropped (rows missing a `drop_missing` value are
    /// recorded in `unusable_rows`).
    pub fn load_for_predict(plan: &DatasetPlan, path: &Path) -> Result<Data, DataError> {
        let (t, missing) = read_input_csv(
            plan,
            path,
            "prediction input is a CSV file of feature columns",
        )?;
        Data::for_prediction(plan, &t, path, &missing)
    }

    /// Labelled rows from one CSV file (to measure a model on rows of one's own): every
    /// feature column and the target column must be present; rows with a missing
    /// `drop_missing` value are removed, as in training. The CSV settings (missing-value
    /// tokens, separator) are those of the plan's first CSV source.
    pub fn load_labelled(plan: &DatasetPlan, path: &Path) -> Result<Data, DataError> {
        let (t, missing) = read_input_csv(
            plan,
            path,
            "labelled rows are a CSV file of feature and target columns",
        )?;
        let mut b = Builder::new(plan, false);
        b.add_csv(&t, path, &missing, SourceRole::All, false)?;
        let keep: Vec<bool> = b.drop.iter().map(|d| !d).collect();
        b.compact(&keep);
        Ok(b.data)
    }

    /// Prediction rows from a parsed table (a CSV file, or a request's rows): every feature
    /// column must be present; other columns are ignored; no row is dropped (rows missing a
    /// `drop_missing` value are recorded in `unusable_rows`). `origin` names the input in
    /// messages, with the table's line numbers.
    pub fn for_prediction(
        plan: &DatasetPlan,
        t: &csv::Table,
        origin: &Path,
        missing: &[String],
    ) -> Result<Data, DataError> {
        let absent: Vec<&str> = plan
            .features
            .iter()
            .map(|f| f.column.as_str())
            .filter(|c| !t.header.iter().any(|h| h == c))
            .collect();
        if !absent.is_empty() {
            return Err(DataError::new(
                COLUMN_MISSING,
                format!(
                    "the input lacks the feature column{} {}",
                    if absent.len() == 1 { "" } else { "s" },
                    absent
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .at(origin, Some(1))
            .with_help(format!(
                "the model was trained on the columns: {}",
                plan.features
                    .iter()
                    .map(|f| f.column.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut b = Builder::new(plan, true);
        b.add_csv(t, origin, missing, SourceRole::All, false)?;
        b.data.unusable = (0..b.drop.len()).filter(|i| b.drop[*i]).collect();
        Ok(b.data)
    }

    /// Prediction rows of an image model: `pixels` holds `n` images of the plan's one image
    /// feature, raw bytes in its declared shape; image `i` is named by `origins[i]` (a file and
    /// a record number) in messages.
    pub fn from_images(
        plan: &DatasetPlan,
        pixels: Vec<u8>,
        origins: &[(PathBuf, usize)],
    ) -> Result<Data, DataError> {
        let mut b = Builder::new(plan, true);
        let n = origins.len();
        match b.data.columns.as_mut_slice() {
            [Column::Image { size, pixels: pool }] if pixels.len() == *size * n => {
                *pool = pixels;
            }
            _ => {
                return Err(DataError::new(
                    MALFORMED,
                    "the images do not match the model's one image feature",
                ));
            }
        }
        for (path, record) in origins {
            let src = match b.data.paths.iter().position(|p| p == path) {
                Some(i) => i as u32,
                None => b.begin_source(path),
            };
            b.data.origins.push((src, *record as u32));
        }
        b.data.roles = vec![SourceRole::All; n];
        Ok(b.data)
    }

    pub fn len(&self) -> usize {
        self.roles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// The source each row came from.
    pub fn role(&self, row: usize) -> SourceRole {
        self.roles[row]
    }

    /// The file a row came from, and its 1-based line (CSV) or record number (IDX).
    pub fn origin(&self, row: usize) -> (&Path, usize) {
        let (s, line) = self.origins[row];
        (self.paths[s as usize].as_path(), line as usize)
    }

    /// `path:line` (CSV) or `path, record N` (IDX) of a row, for messages.
    pub fn location(&self, row: usize) -> String {
        let (p, line) = self.origin(row);
        match self.columns.first() {
            Some(Column::Image { .. }) => format!("{}, record {line}", p.display()),
            _ => format!("{}:{line}", p.display()),
        }
    }

    /// The sha256 of every loaded value (feature columns, levels, targets, in order): two
    /// processes that must train on the same rows (the ranks of an MPI job) compare it.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (name, c) in self.names.iter().zip(&self.columns) {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            match c {
                Column::Numeric(v) => v.iter().for_each(|x| h.update(x.to_bits().to_le_bytes())),
                Column::Category { codes, levels } => {
                    codes.iter().for_each(|x| h.update(x.to_le_bytes()));
                    for l in levels {
                        h.update((l.len() as u64).to_le_bytes());
                        h.update(l.as_bytes());
                    }
                }
                Column::Image { pixels, .. } => h.update(pixels),
            }
        }
        match &self.target {
            Target::Class(v) => v.iter().for_each(|x| h.update(x.to_le_bytes())),
            Target::Value(v) => v.iter().for_each(|x| h.update(x.to_bits().to_le_bytes())),
            Target::Absent => {}
        }
        h.finalize().into()
    }

    /// What each SQL source returned (its query and the hash of its rows), in source order.
    pub fn queried(&self) -> &[QueriedRows] {
        &self.queried
    }

    /// Prediction rows that cannot be used (a missing value where the plan drops such rows).
    pub fn unusable_rows(&self) -> &[usize] {
        &self.unusable
    }

    pub fn is_unusable(&self, row: usize) -> bool {
        self.unusable.binary_search(&row).is_ok()
    }

    /// The names of the loaded feature columns, in plan order.
    pub fn column_names(&self) -> &[String] {
        &self.names
    }

    /// A numeric feature column (`NaN` = missing), by name.
    pub fn numeric(&self, column: &str) -> Option<&[f64]> {
        match self.column(column)? {
            Column::Numeric(v) => Some(v),
            _ => None,
        }
    }

    /// The text of a category feature at `row` (`None` when missing or not a category).
    pub fn category(&self, column: &str, row: usize) -> Option<&str> {
        match self.column(column)? {
            Column::Category { codes, levels } => {
                levels.get(codes[row] as usize).map(String::as_str)
            }
            _ => None,
        }
    }

    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }

    /// The class index of a row (classification data only).
    pub fn class(&self, row: usize) -> Option<u32> {
        match &self.target {
            Target::Class(c) => Some(c[row]),
            _ => None,
        }
    }

    /// Targets of `rows`, appended to `out`: the class index as f32, or the regression value
    /// (`NaN` for prediction input, which has no target).
    pub fn targets(&self, rows: &[usize], out: &mut Vec<f32>) {
        out.reserve(rows.len());
        match &self.target {
            Target::Class(c) => out.extend(rows.iter().map(|r| c[*r] as f32)),
            Target::Value(v) => out.extend(rows.iter().map(|r| v[*r] as f32)),
            Target::Absent => out.extend(rows.iter().map(|_| f32::NAN)),
        }
    }
}

/// A CSV (or Parquet) file of rows given to a trained model (not one of the plan's sources),
/// read with the plan's first CSV source's separator, and that source's missing-value tokens. An image
/// feature cannot come from a CSV: `what` says what the input should be.
fn read_input_csv(
    plan: &DatasetPlan,
    path: &Path,
    what: &str,
) -> Result<(csv::Table, Vec<String>), DataError> {
    if let Some(f) = plan
        .features
        .iter()
        .find(|f| matches!(f.kind, ColumnKind::Tensor { .. }))
    {
        return Err(DataError::new(
            COLUMN_MISSING,
            format!(
                "the feature `{}` is an image read from IDX files; {what}",
                f.column
            ),
        )
        .at(path, None));
    }
    let (missing, sep) = plan
        .sources
        .iter()
        .find_map(|s| match &s.loader {
            Loader::Csv { missing, sep, .. } => Some((missing.clone(), *sep)),
            _ => None,
        })
        .unwrap_or((Vec::new(), ','));
    let t =
        super::sources::read_rows(path, sep).map_err(|e| unreadable(path, e.line, &e.message))?;
    Ok((t, missing))
}

/// Rows a source is read in at a time (a chunk of its text table).
const CHUNK: usize = 1 << 16;

/// Read a CSV, Parquet or SQL source as text tables of at most `chunk` rows, in order: `f`
/// gets each table, the name rows are reported under, the missing-value tokens, and whether
/// the table continues the source (every table after the first). A CSV file is read a block
/// at a time, a Parquet file a row group at a time, a query's rows as they arrive. Returns
/// what a SQL source returned (its query and the hash of its rows).
fn read_tables(
    loader: &Loader,
    chunk: usize,
    mut f: impl FnMut(&csv::Table, &Path, &[String], bool) -> Result<(), DataError>,
) -> Result<Option<QueriedRows>, DataError> {
    match loader {
        Loader::Csv { path, missing, sep } => {
            let mut table = csv::Table::default();
            let mut continuing = false;
            let mut failed: Option<DataError> = None;
            let scanned = csv::scan_file(path, *sep, |header, rec, line| {
                table.push(rec, line)?;
                if table.len() == chunk {
                    table.header = header.to_vec();
                    if let Err(e) = f(&table, path, missing, continuing) {
                        failed = Some(e);
                        // Stops the scan; the data error is the one reported.
                        return Err(csv::CsvError {
                            line,
                            message: String::new(),
                        });
                    }
                    continuing = true;
                    table = csv::Table::default();
                }
                Ok(())
            });
            if let Some(e) = failed {
                return Err(e);
            }
            table.header = scanned.map_err(|e| unreadable(path, e.line, &e.message))?;
            // The last rows (or, for a file of no rows, only its columns' check).
            f(&table, path, missing, continuing)?;
            Ok(None)
        }
        Loader::Parquet { path } => {
            super::sources::parquet_chunks(
                path,
                chunk,
                |t, continuing| f(t, path, &[], continuing),
                |e| unreadable(path, 0, &e.message),
            )?;
            Ok(None)
        }
        Loader::Sql { url, query } => {
            let name = super::sources::sql_name(url);
            let hash = super::sources::sql_chunks(
                url,
                query,
                chunk,
                |t, continuing| f(t, &name, &[], continuing),
                |e| unreadable(&name, 0, &e.message),
            )?;
            Ok(Some(QueriedRows {
                url: url.clone(),
                query: query.clone(),
                sha256: hash,
            }))
        }
        Loader::Idx { images, .. } => Err(DataError::new(
            MALFORMED,
            "IDX image files are not read as tables",
        )
        .at(images, None)),
    }
}

impl Data {
    /// Read every source of the plan in order, a chunk of at most `chunk` rows at a time,
    /// never holding more: `f` gets each chunk as a small pool (`drop_missing` rows removed)
    /// and the key of each of its rows, a hash under `seed` of the text of its feature and
    /// target fields (so equal rows get equal keys, in any source format that gives them the
    /// same text). Category levels met in one chunk keep their codes in the next. Returns
    /// what each SQL source returned.
    pub fn stream(
        plan: &DatasetPlan,
        seed: u64,
        chunk: usize,
        mut f: impl FnMut(&Data, &[u64]) -> Result<(), DataError>,
    ) -> Result<Vec<QueriedRows>, DataError> {
        let mut b = Builder::new(plan, false);
        let mut queried = Vec::new();
        for s in &plan.sources {
            let q = read_tables(&s.loader, chunk.max(1), |t, origin, missing, continuing| {
                b.add_csv(t, origin, missing, s.role, continuing)?;
                let keep: Vec<bool> = b.drop.iter().map(|d| !d).collect();
                let keys = row_keys(plan, t, missing, seed, &keep);
                b.compact(&keep);
                let r = f(&b.data, &keys);
                b.clear_rows();
                r
            })?;
            queried.extend(q);
        }
        Ok(queried)
    }
}

/// The key of each kept row of `t`: FNV-1a over the text of the plan's feature fields and
/// target field (each followed by a byte no UTF-8 text holds; a missing value, however the
/// source marks it, as the empty text), finished with the seed by SplitMix64's mixer.
fn row_keys(
    plan: &DatasetPlan,
    t: &csv::Table,
    missing: &[String],
    seed: u64,
    keep: &[bool],
) -> Vec<u64> {
    let find = |name: &str| t.header.iter().position(|h| h == name);
    let mut cols: Vec<usize> = plan
        .features
        .iter()
        .filter_map(|f| find(&f.column))
        .collect();
    cols.extend(find(&plan.target.column));
    (0..t.len())
        .filter(|r| keep[*r])
        .map(|r| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for c in &cols {
                let v = t.get(r, *c);
                let v = if absent(v, missing) { "" } else { v.trim() };
                for byte in v.bytes().chain([0xff]) {
                    h ^= u64::from(byte);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
            }
            crate::rng::mix(h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        })
        .collect()
}

/// What dedup needs of each source's raw rows.
enum Raw {
    Csv(csv::Table),
    /// Image bytes and labels are compared as loaded into the pool.
    Idx,
}

#[derive(Clone, Hash, PartialEq, Eq)]
enum RawKey<'a> {
    Csv(Vec<&'a str>),
    Idx(&'a [u8], u32),
}

/// Per-column lookup of category codes: exact text, then numeric value (`1.0` is level `1`).
#[derive(Default)]
struct Levels {
    text: HashMap<String, u32>,
    number: HashMap<u64, u32>,
}

fn number_key(x: f64) -> u64 {
    (x + 0.0).to_bits()
}

struct Builder<'p> {
    plan: &'p DatasetPlan,
    predict: bool,
    data: Data,
    lookups: Vec<Levels>,
    /// Rows to remove (or, for prediction, to mark unusable): a missing value under
    /// `drop_missing`.
    drop: Vec<bool>,
    /// Where each source's rows start in the pool.
    starts: Vec<usize>,
}

impl<'p> Builder<'p> {
    fn new(plan: &'p DatasetPlan, predict: bool) -> Builder<'p> {
        let mut columns = Vec::new();
        let mut lookups = Vec::new();
        for f in &plan.features {
            let mut lk = Levels::default();
            columns.push(match &f.kind {
                ColumnKind::Numeric => Column::Numeric(Vec::new()),
                ColumnKind::Category { levels } => {
                    for (i, l) in levels.iter().enumerate() {
                        lk.text.entry(l.clone()).or_insert(i as u32);
                        if let Some(x) = parse_number(l) {
                            lk.number.entry(number_key(x)).or_insert(i as u32);
                        }
                    }
                    Column::Category {
                        codes: Vec::new(),
                        levels: levels.clone(),
                    }
                }
                ColumnKind::Tensor { shape } => Column::Image {
                    size: shape.iter().product(),
                    pixels: Vec::new(),
                },
            });
            lookups.push(lk);
        }
        let target = if predict {
            Target::Absent
        } else {
            match plan.target.kind {
                TargetKind::Class { .. } => Target::Class(Vec::new()),
                TargetKind::Regression => Target::Value(Vec::new()),
                TargetKind::Absent => Target::Absent,
            }
        };
        Builder {
            plan,
            predict,
            data: Data {
                names: plan.features.iter().map(|f| f.column.clone()).collect(),
                columns,
                target,
                roles: Vec::new(),
                origins: Vec::new(),
                paths: Vec::new(),
                unusable: Vec::new(),
                queried: Vec::new(),
            },
            lookups,
            drop: Vec::new(),
            starts: Vec::new(),
        }
    }

    fn drops_missing(&self, j: usize) -> bool {
        self.plan.features[j]
            .steps
            .contains(&crate::check::hir::Step::DropMissing)
    }

    fn begin_source(&mut self, path: &Path) -> u32 {
        self.starts.push(self.data.roles.len());
        self.data.paths.push(path.to_path_buf());
        (self.data.paths.len() - 1) as u32
    }

    fn add_csv(
        &mut self,
        t: &csv::Table,
        path: &Path,
        missing: &[String],
        role: SourceRole,
        continuing: bool,
    ) -> Result<(), DataError> {
        let src = if continuing {
            (self.data.paths.len() - 1) as u32
        } else {
            self.begin_source(path)
        };
        let find = |name: &str| t.header.iter().position(|h| h == name);
        let mut cols = Vec::with_capacity(self.plan.features.len());
        for f in &self.plan.features {
            if matches!(f.kind, ColumnKind::Tensor { .. }) {
                return Err(DataError::new(
                    MALFORMED,
                    format!(
                        "the feature `{}` is an image, but this source is a CSV file",
                        f.column
                    ),
                )
                .at(path, None));
            }
            cols.push(find(&f.column).ok_or_else(|| {
                DataError::new(
                    COLUMN_MISSING,
                    format!("the file has no column `{}`", f.column),
                )
                .at(path, Some(1))
            })?);
        }
        let tcol = if self.predict {
            None
        } else {
            Some(find(&self.plan.target.column).ok_or_else(|| {
                DataError::new(
                    COLUMN_MISSING,
                    format!(
                        "the file has no target column `{}`",
                        self.plan.target.column
                    ),
                )
                .at(path, Some(1))
            })?)
        };
        let drops: Vec<bool> = (0..cols.len()).map(|j| self.drops_missing(j)).collect();
        let n = t.len();
        self.data.roles.extend(std::iter::repeat_n(role, n));
        self.drop.reserve(n);
        for r in 0..n {
            let line = t.lines[r];
            let here = |code, msg: String| DataError::new(code, msg).at(path, Some(line));
            self.data.origins.push((src, line as u32));
            let mut drop = false;
            for (j, &c) in cols.iter().enumerate() {
                let v = t.get(r, c);
                let absent = absent(v, missing);
                drop |= absent && drops[j];
                let name = &self.plan.features[j].column;
                match &mut self.data.columns[j] {
                    Column::Numeric(xs) => {
                        if absent {
                            xs.push(f64::NAN);
                            continue;
                        }
                        let x = v.trim().parse::<f64>().map_err(|_| {
                            here(
                                MALFORMED,
                                format!("column `{name}` holds text \"{v}\", but it is a numeric feature"),
                            )
                        })?;
                        if !x.is_finite() {
                            return Err(here(
                                VALUE,
                                format!(
                                    "column `{name}` holds `{v}`, which is not a finite number"
                                ),
                            ));
                        }
                        xs.push(x);
                    }
                    Column::Category { codes, levels } => {
                        let code = if absent {
                            MISSING
                        } else {
                            code_of(&mut self.lookups[j], levels, v)
                        };
                        codes.push(code);
                    }
                    Column::Image { .. } => {}
                }
            }
            if let Some(tc) = tcol {
                let v = t.get(r, tc);
                let absent = absent(v, missing);
                let tname = &self.plan.target.column;
                if absent {
                    if !self.plan.target.drop_missing {
                        return Err(here(VALUE, format!("the target `{tname}` is missing"))
                            .with_help(format!(
                                "drop such rows: `target {tname}: ... = drop_missing`"
                            )));
                    }
                    drop = true;
                }
                match (&mut self.data.target, &self.plan.target.kind) {
                    (
                        Target::Class(cs),
                        TargetKind::Class {
                            classes,
                            levels,
                            numeric,
                        },
                    ) => {
                        let c = if absent {
                            0
                        } else {
                            class_of(v, *classes, levels, *numeric)
                                .ok_or_else(|| here(LABEL, label_message(tname, v, levels)))?
                        };
                        cs.push(c);
                    }
                    (Target::Value(xs), _) => {
                        let x = if absent {
                            f64::NAN
                        } else {
                            let x = v.trim().parse::<f64>().map_err(|_| {
                                here(MALFORMED, format!("the target `{tname}` holds text \"{v}\", but it is a regression value"))
                            })?;
                            if !x.is_finite() {
                                return Err(here(
                                    VALUE,
                                    format!(
                                        "the target `{tname}` holds `{v}`, which is not a finite number"
                                    ),
                                ));
                            }
                            x
                        };
                        xs.push(x);
                    }
                    _ => {}
                }
            }
            self.drop.push(drop);
        }
        Ok(())
    }

    fn add_idx(
        &mut self,
        images: &Path,
        labels: Option<&Path>,
        role: SourceRole,
    ) -> Result<(), DataError> {
        let idx_err = |p: &Path, e: idx::IdxError| unreadable(p, 0, &e.message);
        let (idims, pixels) = idx::load(images).map_err(|e| idx_err(images, e))?;
        let (ldims, lab) = match labels {
            Some(l) => idx::load(l).map_err(|e| idx_err(l, e))?,
            // Images only: as many (unused) labels as images.
            None => (vec![idims.first().copied().unwrap_or(0)], Vec::new()),
        };
        let labels = labels.unwrap_or(images);
        if idims.len() < 2 {
            return Err(DataError::new(
                MALFORMED,
                format!("an image file needs at least 2 dimensions (count, ...), but its header has {idims:?}"),
            )
            .at(images, None));
        }
        if ldims.len() != 1 || ldims[0] != idims[0] {
            return Err(DataError::new(
                MALFORMED,
                format!(
                    "the label file's header {ldims:?} does not match {} images",
                    idims[0]
                ),
            )
            .at(labels, None));
        }
        let n = idims[0];
        let size: usize = idims[1..].iter().product();
        let (name, want, pool) = match (
            self.plan.features.as_slice(),
            self.data.columns.as_mut_slice(),
        ) {
            ([f], [Column::Image { size, pixels }]) => (&f.column, *size, pixels),
            _ => {
                return Err(DataError::new(
                    MALFORMED,
                    "an IDX dataset has exactly one feature, its `image`",
                )
                .at(images, None));
            }
        };
        if want != size {
            return Err(DataError::new(
                MALFORMED,
                format!(
                    "the images are {:?} ({size} values each), but the feature `{name}` holds {want}",
                    &idims[1..],
                ),
            )
            .at(images, None));
        }
        if pool.is_empty() {
            *pool = pixels;
        } else {
            pool.extend_from_slice(&pixels);
        }
        let src = self.begin_source(images);
        self.data.roles.extend(std::iter::repeat_n(role, n));
        self.data.origins.extend((1..=n).map(|i| (src, i as u32)));
        self.drop.extend(std::iter::repeat_n(false, n));
        let tname = &self.plan.target.column;
        match (&mut self.data.target, &self.plan.target.kind) {
            (
                Target::Class(cs),
                TargetKind::Class {
                    classes, levels, ..
                },
            ) => {
                if let Some(i) = lab.iter().position(|l| usize::from(*l) >= *classes) {
                    return Err(DataError::new(
                        LABEL,
                        format!(
                            "record {}: {}",
                            i + 1,
                            label_message(tname, &lab[i].to_string(), levels)
                        ),
                    )
                    .at(labels, None));
                }
                cs.extend(lab.iter().map(|l| u32::from(*l)));
            }
            (Target::Value(xs), _) => xs.extend(lab.iter().map(|l| f64::from(*l))),
            _ => {}
        }
        Ok(())
    }

    /// Clear `keep` for every row equal (in every column of its raw file) to an earlier kept
    /// row of the pool.
    fn mark_duplicates(&self, raws: &[Raw], keep: &mut [bool]) {
        let mut seen: HashSet<RawKey<'_>> = HashSet::new();
        let image = match self.data.columns.first() {
            Some(Column::Image { size, pixels }) => Some((*size, pixels.as_slice())),
            _ => None,
        };
        for (s, raw) in raws.iter().enumerate() {
            let start = self.starts[s];
            let end = self
                .starts
                .get(s + 1)
                .copied()
                .unwrap_or(self.data.roles.len());
            for row in start..end {
                let key = match (raw, image) {
                    (Raw::Csv(t), _) => RawKey::Csv(t.row(row - start)),
                    (Raw::Idx, Some((size, px))) => RawKey::Idx(
                        &px[row * size..(row + 1) * size],
                        self.data.class(row).unwrap_or(0),
                    ),
                    (Raw::Idx, None) => continue,
                };
                if !seen.insert(key) {
                    keep[row] = false;
                }
            }
        }
    }

    /// Forget the rows, keep the sources, levels and codes (for the next chunk of a stream).
    fn clear_rows(&mut self) {
        let d = &mut self.data;
        d.roles.clear();
        d.origins.clear();
        match &mut d.target {
            Target::Class(c) => c.clear(),
            Target::Value(v) => v.clear(),
            Target::Absent => {}
        }
        for c in &mut d.columns {
            match c {
                Column::Numeric(v) => v.clear(),
                Column::Category { codes, .. } => codes.clear(),
                Column::Image { pixels, .. } => pixels.clear(),
            }
        }
        self.drop.clear();
    }

    /// Remove every row whose `keep` is false.
    fn compact(&mut self, keep: &[bool]) {
        if keep.iter().all(|k| *k) {
            return;
        }
        fn filter<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        let d = &mut self.data;
        filter(&mut d.roles, keep);
        filter(&mut d.origins, keep);
        match &mut d.target {
            Target::Class(c) => filter(c, keep),
            Target::Value(v) => filter(v, keep),
            Target::Absent => {}
        }
        for c in &mut d.columns {
            match c {
                Column::Numeric(v) => filter(v, keep),
                Column::Category { codes, .. } => filter(codes, keep),
                Column::Image { size, pixels } => {
                    let size = *size;
                    let mut w = 0;
                    for (r, k) in keep.iter().enumerate() {
                        if *k {
                            pixels.copy_within(r * size..(r + 1) * size, w * size);
                            w += 1;
                        }
                    }
                    pixels.truncate(w * size);
                }
            }
        }
    }
}

/// A missing value: empty, a `missing` token (with or without surrounding spaces), or `NaN`.
fn absent(v: &str, missing: &[String]) -> bool {
    let t = v.trim();
    is_missing(v, missing) || is_missing(t, missing) || spells_nan(t)
}

/// Whether `t` is a spelling of NaN that `f64`'s parser takes (`nan`, `NaN`, `-nan`, ...),
/// without parsing every value twice.
fn spells_nan(t: &str) -> bool {
    let t = t.strip_prefix(['+', '-']).unwrap_or(t);
    t.eq_ignore_ascii_case("nan")
}

fn code_of(lk: &mut Levels, levels: &mut Vec<String>, v: &str) -> u32 {
    if let Some(c) = lk.text.get(v) {
        return *c;
    }
    if let Some(c) = parse_number(v).and_then(|x| lk.number.get(&number_key(x))) {
        return *c;
    }
    let c = levels.len() as u32;
    levels.push(v.to_string());
    lk.text.insert(v.to_string(), c);
    c
}

/// The class index of a label, if it is one of the declared classes.
fn class_of(v: &str, classes: usize, levels: &[String], numeric: bool) -> Option<u32> {
    if numeric {
        let x = parse_number(v)?;
        (x >= 0.0 && x.fract() == 0.0 && x < classes as f64).then_some(x as u32)
    } else {
        levels
            .iter()
            .position(|l| l == v)
            .filter(|i| *i < classes)
            .map(|i| i as u32)
    }
}

fn label_message(target: &str, v: &str, levels: &[String]) -> String {
    let shown: Vec<&str> = levels.iter().take(12).map(String::as_str).collect();
    format!(
        "the target `{target}` has the label \"{v}\", which is not one of the declared classes ({}{})",
        shown.join(", "),
        if levels.len() > 12 { ", ..." } else { "" }
    )
}

#[cfg(test)]
mod nan_tests {
    #[test]
    fn nan_spellings_are_those_the_parser_reads_as_nan() {
        for t in [
            "nan", "NaN", "NAN", "-nan", "+NaN", "nan0", "na", "n", "", "1", "inf", "-", "--nan",
        ] {
            assert_eq!(
                super::spells_nan(t),
                t.parse::<f64>().is_ok_and(f64::is_nan),
                "{t:?}"
            );
        }
    }
}
