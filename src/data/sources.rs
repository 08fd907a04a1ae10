//! Tabular sources other than CSV: Parquet files (`parquet("file.parquet")`) and SQL queries
//! (`sql("sqlite:file.db", query: ...)`, `sql("postgres://host/db", query: ...)`).
//!
//! Each gives what a CSV file gives: a schema at check time (`CsvSchema`: names, number or
//! text, missing counts, levels) and, at load, a `csv::Table` of its values as text — numbers
//! in their shortest round-trip decimal form (whole numbers without a fraction), NULL as an
//! empty (missing) field — so the rest of the pipeline (dedup, preprocessing, splits) treats
//! every source alike, and a table holding the values of a CSV file gives the same run.
//!
//! Types come from the source: a Parquet column's physical and converted type from the
//! footer, a query's column types from preparing it; what mlx cannot read
//! (timestamps, decimals, binary, nested columns) is recorded as `Column::unsupported` and is
//! an error only where a feature or the target uses it. A SQL schema's counts and levels come
//! from bounded aggregate queries over the query (its rows are not fetched at check time); at
//! load the rows are read once and hashed
//! (`mlx.lock` records the hash, so `mlx verify` names a changed table). Credentials never
//! come from the spec: a password in a PostgreSQL URL is refused; it is read from
//! `PGPASSWORD` or the password file (`PGPASSFILE`, else `~/.pgpass`).

use super::csv::Table;
use super::schema::{CsvSchema, MAX_LEVELS, Stats};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A failure of a Parquet or SQL source: what to say, and whether it is the query's fault
/// (the diagnostic then points at `query:`) rather than the file's or the connection's.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceError {
    pub message: String,
    pub in_query: bool,
    pub missing_file: bool,
}

impl SourceError {
    fn new(message: impl Into<String>) -> SourceError {
        SourceError {
            message: message.into(),
            in_query: false,
            missing_file: false,
        }
    }

    fn query(message: impl Into<String>) -> SourceError {
        SourceError {
            in_query: true,
            ..SourceError::new(message)
        }
    }
}

/// A number as the text a table holds: whole numbers without a fraction (`3750`, as a CSV
/// file writes them), others in the shortest form that reads back to the same `f64`; NaN is
/// missing.
pub fn number_text(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

/// `number_text` for a 32-bit float: its own shortest form (`39.1`, as a CSV file written from
/// it says), not the digits of its widening to `f64` (`39.099998474121094`).
pub fn number_text_f32(x: f32) -> String {
    if x.is_nan() {
        String::new()
    } else if x.fract() == 0.0 && x.abs() < 1e7 {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

/// A Parquet decimal as exact decimal text (`-12.50`): its unscaled big-endian two's-complement
/// integer with the point placed by its scale; `None` past 16 bytes (38 digits).
fn decimal_text(d: &parquet::data_type::Decimal) -> Option<String> {
    let bytes = d.data();
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i128::from(*b);
    }
    let scale = d.scale();
    if scale <= 0 {
        let zeros = "0".repeat(usize::try_from(-scale).unwrap_or(0));
        return Some(if v == 0 {
            "0".into()
        } else {
            format!("{v}{zeros}")
        });
    }
    let digits = v.unsigned_abs().to_string();
    let s = usize::try_from(scale).ok()?;
    let padded = format!("{digits:0>width$}", width = s + 1);
    let (int, frac) = padded.split_at(padded.len() - s);
    Some(format!("{}{int}.{frac}", if v < 0 { "-" } else { "" }))
}

// ----------------------------------------------------------------------------------------------
// Parquet

/// How a Parquet column is read.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Number,
    Text,
    /// Not read; the type, as the message names it.
    Unsupported(String),
}

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> SourceError {
    use parquet::errors::ParquetError as E;
    let m = match &e {
        E::EOF(m) => format!("the file is truncated or not a Parquet file ({m})"),
        E::General(m) if m.contains("Corrupt footer") => {
            "not a Parquet file, or a truncated one: its footer is missing".to_string()
        }
        E::General(m) if m.contains("Disabled feature") => format!(
            "it is compressed with a codec mlx does not read ({m}); rewrite it with snappy, gzip, lz4 or zstd"
        ),
        E::NYI(m) => format!("it uses a feature mlx does not read: {m}"),
        E::External(m) => m.to_string(),
        other => other.to_string(),
    };
    SourceError {
        missing_file: !path.exists(),
        ..SourceError::new(m)
    }
}

/// The kind of each top-level field of a Parquet schema.
fn parquet_kinds(fields: &[std::sync::Arc<parquet::schema::types::Type>]) -> Vec<(String, Kind)> {
    use parquet::basic::{ConvertedType as C, LogicalType as L, Repetition, Type as P};
    fields
        .iter()
        .map(|f| {
            let info = f.get_basic_info();
            let name = f.name().to_string();
            if f.is_group() || info.repetition() == Repetition::REPEATED {
                return (
                    name,
                    Kind::Unsupported("a nested column (group, list or map)".into()),
                );
            }
            let physical = f.get_physical_type();
            let converted = info.converted_type();
            // Logical types without a converted type (nanosecond timestamps, UUIDs, ...).
            let logical = info.logical_type_ref();
            let unsupported_logical = match logical {
                Some(L::Timestamp { .. }) => Some("TIMESTAMP"),
                Some(L::Date) => Some("DATE"),
                Some(L::Time { .. }) => Some("TIME"),
                Some(L::Uuid) => Some("UUID"),
                Some(L::Json) => Some("JSON"),
                Some(L::Bson) => Some("BSON"),
                _ => None,
            };
            if let Some(t) = unsupported_logical {
                return (name, Kind::Unsupported(t.into()));
            }
            let kind = match (physical, converted) {
                (P::BOOLEAN, C::NONE) => Kind::Text,
                (P::INT32 | P::INT64, C::NONE)
                | (P::INT32, C::INT_8 | C::INT_16 | C::INT_32 | C::UINT_8 | C::UINT_16)
                | (P::INT32, C::UINT_32)
                | (P::INT64, C::INT_64 | C::UINT_64) => Kind::Number,
                (P::FLOAT | P::DOUBLE, C::NONE) => Kind::Number,
                // Decimals up to 38 digits: read exactly as decimal text.
                (P::INT32 | P::INT64 | P::BYTE_ARRAY | P::FIXED_LEN_BYTE_ARRAY, C::DECIMAL) => {
                    if f.get_precision() <= 38 {
                        Kind::Number
                    } else {
                        Kind::Unsupported(format!(
                            "DECIMAL({}) (more than 38 digits)",
                            f.get_precision()
                        ))
                    }
                }
                (P::BYTE_ARRAY, C::UTF8 | C::ENUM) => Kind::Text,
                (P::BYTE_ARRAY, C::NONE) => Kind::Unsupported("binary (BYTE_ARRAY)".into()),
                (P::INT96, _) => Kind::Unsupported("INT96 (a legacy timestamp)".into()),
                (p, C::NONE) => Kind::Unsupported(p.to_string()),
                (p, c) => Kind::Unsupported(format!("{p} ({c})")),
            };
            (name, kind)
        })
        .collect()
}

/// Visit a Parquet file's rows as text, one at a time (`each` gets the fields and the 1-based
/// row number); returns the header and the kind of each column. Columns mlx does not read are
/// left out of the read (their fields are empty), so no reader path for them runs; only one
/// row group is decoded at a time.
fn parquet_each(
    path: &Path,
    mut each: impl FnMut(&[String], &[String], usize) -> Result<(), SourceError>,
) -> Result<(Vec<String>, Vec<Kind>), SourceError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let io = |e: std::io::Error| SourceError {
        missing_file: e.kind() == std::io::ErrorKind::NotFound,
        ..SourceError::new(super::csv::io_message(&e))
    };
    super::csv::check_regular(path).map_err(io)?;
    let len = std::fs::metadata(path).map_err(io)?.len();
    let file = std::fs::File::open(path).map_err(io)?;
    let reader = SerializedFileReader::new(file).map_err(|e| parquet_error(path, e))?;
    let meta = reader.metadata();
    // Every column chunk must lie inside the file: a footer that says otherwise is corrupt
    // (and must not make the reader allocate what it claims).
    for rg in meta.row_groups() {
        for c in rg.columns() {
            // `byte_range` asserts these are not negative: a corrupt footer must not get there.
            if c.data_page_offset() < 0
                || c.compressed_size() < 0
                || c.dictionary_page_offset().is_some_and(|o| o < 0)
            {
                return Err(SourceError::new(format!(
                    "the footer gives column `{}` a negative position or size: the file is corrupt",
                    c.column_path()
                )));
            }
            let (start, size) = c.byte_range();
            if start.checked_add(size).is_none_or(|end| end > len) {
                return Err(SourceError::new(format!(
                    "the footer places column `{}` past the end of the file: it is truncated or corrupt",
                    c.column_path()
                )));
            }
        }
    }
    let root = meta.file_metadata().schema_descr().root_schema();
    let named = parquet_kinds(root.get_fields());
    let header: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let kinds: Vec<Kind> = named.into_iter().map(|(_, k)| k).collect();
    let read: Vec<usize> = (0..kinds.len())
        .filter(|i| !matches!(kinds[*i], Kind::Unsupported(_)))
        .collect();
    if read.is_empty() {
        // Nothing mlx reads: the rows are the footer's count of empty rows.
        let n = usize::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
        let cells = vec![String::new(); header.len()];
        for r in 0..n {
            each(&header, &cells, r + 1)?;
        }
        return Ok((header, kinds));
    }
    let projection = parquet::schema::types::Type::group_type_builder(root.name())
        .with_fields(read.iter().map(|i| root.get_fields()[*i].clone()).collect())
        .build()
        .map_err(|e| parquet_error(path, e))?;
    let mut cells = vec![String::new(); header.len()];
    let mut read_rows = 0usize;
    let rows = reader
        .get_row_iter(Some(projection))
        .map_err(|e| parquet_error(path, e))?;
    for (r, row) in rows.enumerate() {
        let row = row.map_err(|e| parquet_error(path, e))?;
        for ((_, field), j) in row.get_column_iter().zip(&read) {
            cells[*j] = match field {
                Field::Null => String::new(),
                Field::Bool(b) => b.to_string(),
                Field::Byte(v) => v.to_string(),
                Field::Short(v) => v.to_string(),
                Field::Int(v) => v.to_string(),
                Field::Long(v) => v.to_string(),
                Field::UByte(v) => v.to_string(),
                Field::UShort(v) => v.to_string(),
                Field::UInt(v) => v.to_string(),
                Field::ULong(v) => v.to_string(),
                Field::Float(v) => number_text_f32(*v),
                Field::Double(v) => number_text(*v),
                Field::Float16(v) => number_text_f32(v.to_f32()),
                Field::Str(s) => s.clone(),
                Field::Decimal(d) => decimal_text(d).ok_or_else(|| {
                    SourceError::new(format!(
                        "row {}: column `{}` holds a decimal of more than 16 bytes",
                        r + 1,
                        header[*j]
                    ))
                })?,
                other => {
                    return Err(SourceError::new(format!(
                        "row {}: column `{}` holds a value mlx does not read: {other}",
                        r + 1,
                        header[*j]
                    )));
                }
            };
        }
        each(&header, &cells, r + 1)?;
        read_rows = r + 1;
    }
    // A file whose pages hold fewer (or more) rows than its footer says is corrupt.
    let declared = meta.file_metadata().num_rows();
    if i64::try_from(read_rows).ok() != Some(declared) {
        return Err(SourceError::new(format!(
            "its footer declares {declared} rows, but its pages hold {read_rows}: the file is corrupt"
        )));
    }
    Ok((header, kinds))
}

/// A file of rows given to a trained model (to predict, monitor or explain): a Parquet file
/// by its extension, else a CSV file with the given separator.
pub fn read_rows(path: &Path, sep: char) -> Result<Table, super::csv::CsvError> {
    if path.extension().is_some_and(|e| e == "parquet") {
        let err = |e: SourceError| super::csv::CsvError {
            line: 0,
            message: e.message,
        };
        // Columns mlx cannot read are left out: a feature among them is a missing column,
        // never a column of missing values.
        let (table, kinds) = whole(|v| parquet_each(path, v)).map_err(err)?;
        let readable: Vec<usize> = (0..kinds.len())
            .filter(|j| !matches!(kinds[*j], Kind::Unsupported(_)))
            .collect();
        if readable.len() == kinds.len() {
            return Ok(table);
        }
        // Rebuild without the unreadable columns (their fields are all empty).
        let mut t = Table::default();
        for r in 0..table.len() {
            let kept: Vec<&str> = readable.iter().map(|j| table.get(r, *j)).collect();
            t.push(&kept, table.lines[r])
                .map_err(|e| err(SourceError::new(e.message)))?;
        }
        t.header = readable.iter().map(|j| table.header[*j].clone()).collect();
        Ok(t)
    } else {
        super::csv::read(path, sep)
    }
}

/// A Parquet file's rows as text (for loading, when every row is needed at once: `dedup`).
pub fn parquet_table(path: &Path) -> Result<Table, SourceError> {
    whole(|v| parquet_each(path, v)).map(|(t, _)| t)
}

/// What visits a source's rows: the header, the fields and the 1-based row number.
type Visit<'v> = dyn FnMut(&[String], &[String], usize) -> Result<(), SourceError> + 'v;

/// A source's rows (from `visit`, which calls its visitor once a row and returns the header
/// and what else it found) in tables of at most `chunk` rows, handed to `each` as they are read
/// and then dropped: loading holds one chunk, not the source. `each` is called at least once
/// (with no rows for an empty source), and its flag says whether earlier chunks came before.
fn chunks<E, T>(
    chunk: usize,
    mut each: impl FnMut(&Table, bool) -> Result<(), E>,
    error: impl Fn(SourceError) -> E,
    visit: impl FnOnce(&mut Visit<'_>) -> Result<(Vec<String>, T), SourceError>,
) -> Result<T, E> {
    let mut table = Table::default();
    let mut continuing = false;
    let mut failed: Option<E> = None;
    let scanned = visit(&mut |header, cells, r| {
        table
            .push(cells, r)
            .map_err(|e| SourceError::new(e.message))?;
        if table.len() == chunk {
            table.header = header.to_vec();
            if let Err(e) = each(&table, continuing) {
                failed = Some(e);
                // Stops the visit; the caller's error is the one reported.
                return Err(SourceError::new(String::new()));
            }
            continuing = true;
            table = Table::default();
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let (header, found) = scanned.map_err(&error)?;
    if !(table.is_empty() && continuing) {
        table.header = header;
        each(&table, continuing)?;
    }
    Ok(found)
}

/// A source's rows as one table (when every row is needed at once: `dedup`).
fn whole<T>(
    visit: impl FnOnce(&mut Visit<'_>) -> Result<(Vec<String>, T), SourceError>,
) -> Result<(Table, T), SourceError> {
    let mut table = Table::default();
    let (header, found) = visit(&mut |_, cells, r| {
        table
            .push(cells, r)
            .map_err(|e| SourceError::new(e.message))
    })?;
    table.header = header;
    Ok((table, found))
}

/// A Parquet file's rows in chunks of at most `chunk` rows (see `chunks`).
pub fn parquet_chunks<E>(
    path: &Path,
    chunk: usize,
    each: impl FnMut(&Table, bool) -> Result<(), E>,
    error: impl Fn(SourceError) -> E,
) -> Result<(), E> {
    chunks(chunk, each, error, |v| parquet_each(path, v)).map(|_| ())
}

/// A Parquet file's schema: its columns' types from the footer; counts and levels from one
/// pass over the values, holding one row at a time.
pub fn parquet_schema(path: &Path) -> Result<CsvSchema, SourceError> {
    let mut stats: Vec<Stats> = Vec::new();
    let mut rows = 0;
    let (header, kinds) = parquet_each(path, |_, cells, r| {
        if stats.is_empty() {
            stats = cells.iter().map(|_| Stats::new()).collect();
        }
        for (st, v) in stats.iter_mut().zip(cells) {
            st.add(v, r, &[]);
        }
        rows = r;
        Ok(())
    })?;
    stats.resize_with(header.len(), Stats::new);
    let columns = header
        .into_iter()
        .zip(stats)
        .zip(&kinds)
        .map(|((name, st), kind)| {
            let mut c = st.column(name);
            match kind {
                // A text column is text even when its values look like numbers.
                Kind::Text if c.numeric => {
                    c.numeric = false;
                    c.integer = false;
                    c.first_text = c.levels.first().map(|v| (v.clone(), 0));
                }
                Kind::Unsupported(ty) => {
                    // Its fields were never read: say nothing of its values.
                    c = Stats::new().column(c.name);
                    c.missing = rows;
                    c.unsupported = Some(ty.clone());
                }
                _ => {}
            }
            c
        })
        .collect();
    Ok(CsvSchema { columns, rows })
}

// ----------------------------------------------------------------------------------------------
// SQL

/// The database file of a `sqlite:` URL.
pub fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite:")
        .map(|p| p.strip_prefix("//").unwrap_or(p))
}

/// A SQL source as messages and the lock name it: the URL (which holds no password).
pub fn sql_name(url: &str) -> PathBuf {
    PathBuf::from(url)
}

enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

/// Whether a PostgreSQL URL holds a password (refused: it would be written in `spec.mlx`).
pub fn url_has_password(url: &str) -> bool {
    // `scheme://user:password@host...`, read as text too, so a URL too malformed to parse
    // still has its password refused (and never shown).
    let textual = url.split_once("://").is_some_and(|(_, rest)| {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(user, _)| user.contains(':'))
    });
    textual
        || url
            .parse::<postgres::Config>()
            .is_ok_and(|c| c.get_password().is_some())
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// What `sql(url, ...)` may name, for messages.
pub const URL_FORMS: &str = "`sqlite:path/to/file.db` or `postgres://user@host:port/database`";

fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        other => other.to_string(),
    }
}

fn postgres_message(e: &postgres::Error) -> String {
    use std::error::Error as _;
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(h) = db.hint() {
                m.push_str(&format!(" (hint: {h})"));
            }
            m
        }
        None => match e.source() {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

/// A PostgreSQL error caused by the query (a syntax error, an unknown table or column), as
/// opposed to the connection or the credentials.
fn postgres_in_query(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        let c = db.code().code();
        // Class 42: syntax error or access rule violation; 22: data exception.
        c.starts_with("42") || c.starts_with("22")
    })
}

/// The password of a connection from the password file (`PGPASSFILE`, else `~/.pgpass`):
/// the first line `host:port:database:user:password` matching, `*` matching anything.
fn pgpass(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    pgpass_in(&file, host, port, db, user)
}

/// [`pgpass`] from a given file.
fn pgpass_in(file: &Path, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    // libpq ignores a password file others can read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(file).ok()?.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        // Fields split at unescaped `:`; `\:` and `\\` are a colon and a backslash.
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        fields.last_mut()?.push(n);
                    }
                }
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => fields.last_mut()?.push(c),
            }
        }
        if fields.len() != 5 {
            continue;
        }
        let ok = |f: &str, v: &str| f == "*" || f == v;
        if ok(&fields[0], host)
            && ok(&fields[1], &port)
            && ok(&fields[2], db)
            && ok(&fields[3], user)
        {
            return fields.pop();
        }
    }
    None
}

fn connect(url: &str) -> Result<Db, SourceError> {
    if let Some(path) = sqlite_path(url) {
        let p = Path::new(path);
        if !p.exists() {
            return Err(SourceError {
                missing_file: true,
                ..SourceError::new(format!("the SQLite database `{path}` does not exist"))
            });
        }
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(p, flags).map_err(|e| {
            SourceError::new(format!("cannot open `{path}`: {}", sqlite_message(&e)))
        })?;
        return Ok(Db::Sqlite(conn));
    }
    if !is_postgres(url) {
        return Err(SourceError::new(format!(
            "`{url}` is not a database URL mlx reads: write {URL_FORMS}"
        )));
    }
    let mut cfg: postgres::Config = url.parse().map_err(|e: postgres::Error| {
        SourceError::new(format!("a malformed URL: {}", postgres_message(&e)))
    })?;
    if cfg.get_password().is_some() {
        return Err(SourceError::new(
            "the URL holds a password; mlx reads it from PGPASSWORD or the password file (~/.pgpass), never from the spec",
        ));
    }
    if cfg.get_hosts().is_empty() {
        cfg.host(&std::env::var("PGHOST").unwrap_or_else(|_| "localhost".into()));
    }
    if cfg.get_ports().is_empty()
        && let Some(p) = std::env::var("PGPORT").ok().and_then(|p| p.parse().ok())
    {
        cfg.port(p);
    }
    if cfg.get_user().is_none()
        && let Ok(u) = std::env::var("PGUSER").or_else(|_| std::env::var("USER"))
    {
        cfg.user(&u);
    }
    let host = match cfg.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(_)) => "localhost".into(),
        None => "localhost".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let db = cfg
        .get_dbname()
        .or(cfg.get_user())
        .unwrap_or_default()
        .to_string();
    let user = cfg.get_user().unwrap_or_default().to_string();
    if let Some(pw) = std::env::var("PGPASSWORD")
        .ok()
        .or_else(|| pgpass(&host, port, &db, &user))
    {
        cfg.password(pw);
    }
    cfg.connect_timeout(std::time::Duration::from_secs(10));
    let mut client = cfg.connect(postgres::NoTls).map_err(|e| {
        let m = postgres_message(&e);
        SourceError::new(if m.contains("password missing") {
            "the server asks for a password, and none is given: set PGPASSWORD or add it to the password file (~/.pgpass)".to_string()
        } else {
            format!("cannot connect: {m}")
        })
    })?;
    client
        .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .map_err(|e| SourceError::new(postgres_message(&e)))?;
    Ok(Db::Postgres(Box::new(client)))
}

/// The query as a subquery: without what trails its last token (white space, semicolons,
/// `--` and `/* */` comments), found by a small lexer that knows strings and quoted names.
fn inner(query: &str) -> &str {
    let b = query.as_bytes();
    let (mut i, mut end) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
                end = i.min(b.len());
            }
            c if c.is_ascii_whitespace() || c == b';' => i += 1,
            _ => {
                i += 1;
                end = i;
            }
        }
    }
    // `end` is just past an ASCII byte or a closing quote: a character boundary.
    query[..end.min(query.len())].trim_start()
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A column of a query's result.
struct SqlColumn {
    name: String,
    kind: Kind,
    /// PostgreSQL: floating point or numeric (whose integrality is counted).
    fractional: bool,
    /// PostgreSQL NUMERIC (as opposed to a float).
    decimal: bool,
    /// PostgreSQL BOOL: its `t`/`f` read as `true`/`false`, as Parquet and CSV files write them.
    boolean: bool,
}

/// PostgreSQL's text of a boolean as the other sources write it.
fn pg_bool(v: &str) -> String {
    match v {
        "t" => "true".into(),
        "f" => "false".into(),
        other => other.into(),
    }
}

fn sqlite_value_text(
    v: rusqlite::types::ValueRef<'_>,
    column: &str,
) -> Result<String, SourceError> {
    use rusqlite::types::ValueRef as V;
    Ok(match v {
        V::Null => String::new(),
        V::Integer(i) => i.to_string(),
        V::Real(x) => number_text(x),
        V::Text(b) => std::str::from_utf8(b)
            .map_err(|_| {
                SourceError::new(format!("column `{column}` holds text that is not UTF-8"))
            })?
            .to_string(),
        V::Blob(_) => {
            return Err(SourceError::new(format!(
                "column `{column}` holds a BLOB, which mlx does not read"
            )));
        }
    })
}

fn pg_kind(t: &postgres::types::Type) -> (Kind, bool) {
    use postgres::types::Type as T;
    match *t {
        T::INT2 | T::INT4 | T::INT8 | T::OID => (Kind::Number, false),
        T::FLOAT4 | T::FLOAT8 | T::NUMERIC => (Kind::Number, true),
        T::BOOL | T::TEXT | T::VARCHAR | T::BPCHAR | T::NAME | T::CHAR => (Kind::Text, false),
        _ => (Kind::Unsupported(t.name().to_uppercase()), false),
    }
}

/// Prepare (never run) the query: its columns, with duplicate names refused.
fn prepare(db: &mut Db, query: &str) -> Result<Vec<SqlColumn>, SourceError> {
    let cols: Vec<SqlColumn> = match db {
        Db::Sqlite(c) => {
            let stmt = c
                .prepare(query)
                .map_err(|e| SourceError::query(sqlite_message(&e)))?;
            if !stmt.readonly() {
                return Err(SourceError::query(
                    "the query would change the database; a source reads rows with SELECT",
                ));
            }
            stmt.columns()
                .map(|c| SqlColumn {
                    name: c.name().to_string(),
                    // SQLite's types are per value: found by the aggregate below.
                    kind: Kind::Number,
                    fractional: true,
                    decimal: false,
                    boolean: false,
                })
                .collect()
        }
        Db::Postgres(c) => {
            let stmt = c.prepare(query).map_err(|e| SourceError {
                in_query: postgres_in_query(&e),
                ..SourceError::new(postgres_message(&e))
            })?;
            stmt.columns()
                .iter()
                .map(|c| {
                    let (kind, fractional) = pg_kind(c.type_());
                    SqlColumn {
                        name: c.name().to_string(),
                        kind,
                        fractional,
                        decimal: *c.type_() == postgres::types::Type::NUMERIC,
                        boolean: *c.type_() == postgres::types::Type::BOOL,
                    }
                })
                .collect()
        }
    };
    if cols.is_empty() {
        return Err(SourceError::query("the query returns no columns"));
    }
    // SQLite matches names without regard to ASCII case.
    let sqlite = matches!(db, Db::Sqlite(_));
    for (i, c) in cols.iter().enumerate() {
        if cols[..i]
            .iter()
            .any(|d| d.name == c.name || (sqlite && d.name.eq_ignore_ascii_case(&c.name)))
        {
            return Err(SourceError::query(format!(
                "the query returns two columns named `{}`; name them apart with AS",
                c.name
            )));
        }
    }
    Ok(cols)
}

/// Run a query whose answer is small (an aggregate, a bounded DISTINCT): its rows as text.
fn small_query(db: &mut Db, sql: &str) -> Result<Vec<Vec<String>>, SourceError> {
    let mut out = Vec::new();
    match db {
        Db::Sqlite(c) => {
            let mut stmt = c
                .prepare(sql)
                .map_err(|e| SourceError::query(sqlite_message(&e)))?;
            let n = stmt.column_count();
            let mut rows = stmt
                .query([])
                .map_err(|e| SourceError::query(sqlite_message(&e)))?;
            while let Some(r) = rows
                .next()
                .map_err(|e| SourceError::query(sqlite_message(&e)))?
            {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    let x = r
                        .get_ref(i)
                        .map_err(|e| SourceError::query(sqlite_message(&e)))?;
                    v.push(sqlite_value_text(x, "")?);
                }
                out.push(v);
            }
        }
        Db::Postgres(c) => {
            for m in c.simple_query(sql).map_err(|e| SourceError {
                in_query: postgres_in_query(&e),
                ..SourceError::new(postgres_message(&e))
            })? {
                if let postgres::SimpleQueryMessage::Row(r) = m {
                    out.push(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or_default().to_string())
                            .collect(),
                    );
                }
            }
        }
    }
    Ok(out)
}

/// The schema of a query's result, from preparing it and from aggregates over it: the row
/// count, each column's non-null count, whether its values are numbers (and whole), and its
/// distinct values up to `MAX_LEVELS`. The rows themselves are not fetched.
pub fn sql_schema(url: &str, query: &str) -> Result<CsvSchema, SourceError> {
    let mut db = connect(url)?;
    let q = inner(query);
    let cols = prepare(&mut db, q)?;
    let sqlite = matches!(db, Db::Sqlite(_));
    let mut agg = String::from("SELECT COUNT(*)");
    for c in &cols {
        let n = quote(&c.name);
        if sqlite {
            agg.push_str(&format!(
                ", COUNT({n}), SUM(typeof({n}) IN ('integer', 'real')), \
                 SUM(typeof({n}) = 'real' AND {n} <> CAST({n} AS INTEGER)), SUM(typeof({n}) = 'blob')"
            ));
        } else if c.fractional {
            // float8 has its own trunc (numeric cannot hold an infinity before PostgreSQL 14).
            let t = if c.decimal {
                format!("trunc({n})")
            } else {
                format!("trunc({n}::float8)")
            };
            agg.push_str(&format!(
                ", COUNT({n}), COUNT(*) FILTER (WHERE {n} <> {t} AND {n} = {n})"
            ));
        } else if matches!(c.kind, Kind::Unsupported(_)) {
            agg.push_str(", 0");
        } else {
            agg.push_str(&format!(", COUNT({n})"));
        }
    }
    agg.push_str(&format!(" FROM (\n{q}\n) AS mlx_source"));
    let row = small_query(&mut db, &agg)?
        .into_iter()
        .next()
        .ok_or_else(|| SourceError::new("the aggregate over the query returned nothing"))?;
    let num = |s: &str| s.parse::<u64>().unwrap_or(0) as usize;
    let rows = num(&row[0]);
    let mut at = 1;
    let mut columns = Vec::with_capacity(cols.len());
    for c in cols {
        let n = quote(&c.name);
        let (present, mut kind, integer) = if sqlite {
            let (present, numbers, fractions, blobs) = (
                num(&row[at]),
                num(&row[at + 1]),
                num(&row[at + 2]),
                num(&row[at + 3]),
            );
            at += 4;
            let kind = if blobs > 0 {
                Kind::Unsupported("BLOB".into())
            } else if numbers == present {
                Kind::Number
            } else {
                Kind::Text
            };
            (present, kind, fractions == 0)
        } else if c.fractional {
            let r = (num(&row[at]), c.kind, num(&row[at + 1]) == 0);
            at += 2;
            r
        } else {
            let r = (num(&row[at]), c.kind, true);
            at += 1;
            r
        };
        let mut col = Stats::new().column(c.name.clone());
        col.missing = rows.saturating_sub(present);
        if let Kind::Unsupported(t) = &kind {
            col.unsupported = Some(t.clone());
            col.missing = rows;
            columns.push(col);
            continue;
        }
        let cast = if sqlite {
            n.clone()
        } else {
            format!("{n}::text")
        };
        let levels = small_query(
            &mut db,
            &format!(
                "SELECT DISTINCT {cast} FROM ({q}) AS mlx_source WHERE {n} IS NOT NULL ORDER BY 1 LIMIT {}",
                MAX_LEVELS + 1
            ),
        )?;
        let mut st = Stats::new();
        for (i, v) in levels.iter().take(MAX_LEVELS).enumerate() {
            st.add(&v[0], i + 1, &[]);
        }
        let mut from = st.column(c.name.clone());
        if kind == Kind::Text && from.numeric {
            // A text column is text even when its values look like numbers.
            from.numeric = false;
            from.integer = false;
            kind = Kind::Text;
        }
        col.numeric = kind == Kind::Number && from.numeric;
        col.integer = col.numeric && integer && from.integer;
        col.levels = from.levels;
        col.levels_truncated = levels.len() > MAX_LEVELS;
        col.first_text = (!col.numeric)
            .then(|| col.levels.first().map(|v| (v.clone(), 0)))
            .flatten();
        columns.push(col);
    }
    Ok(CsvSchema { columns, rows })
}

/// Visit a query's rows as text, one at a time (`each` gets the header, the fields and the
/// 1-based row number), holding one row: SQLite steps its statement, PostgreSQL streams
/// `COPY (query) TO STDOUT` (the same text as the server's output functions give any client).
/// Returns the header and the sha256 of what was read (every field with whether it is NULL,
/// row after row): `mlx.lock` records it.
fn sql_each(
    url: &str,
    query: &str,
    mut each: impl FnMut(&[String], &[String], usize) -> Result<(), SourceError>,
) -> Result<(Vec<String>, String), SourceError> {
    let mut db = connect(url)?;
    let q = inner(query);
    let cols = prepare(&mut db, q)?;
    let header: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
    let mut hash = Sha256::new();
    let mut cells: Vec<String> = vec![String::new(); header.len()];
    let mut nulls = vec![false; header.len()];
    let mut add = |cells: &[String], nulls: &[bool], r: usize| -> Result<(), SourceError> {
        for (c, null) in cells.iter().zip(nulls) {
            hash.update([u8::from(*null)]);
            hash.update((c.len() as u64).to_le_bytes());
            hash.update(c.as_bytes());
        }
        each(&header, cells, r)
    };
    match &mut db {
        Db::Sqlite(c) => {
            let mut stmt = c
                .prepare(q)
                .map_err(|e| SourceError::query(sqlite_message(&e)))?;
            let mut rows = stmt
                .query([])
                .map_err(|e| SourceError::query(sqlite_message(&e)))?;
            let mut r = 0;
            while let Some(row) = rows
                .next()
                .map_err(|e| SourceError::query(sqlite_message(&e)))?
            {
                r += 1;
                for (j, cell) in cells.iter_mut().enumerate() {
                    let v = row
                        .get_ref(j)
                        .map_err(|e| SourceError::query(sqlite_message(&e)))?;
                    nulls[j] = matches!(v, rusqlite::types::ValueRef::Null);
                    *cell = sqlite_value_text(v, &cols[j].name)?;
                }
                add(&cells, &nulls, r)?;
            }
        }
        Db::Postgres(c) => {
            use std::io::BufRead;
            let pg = |e: postgres::Error| SourceError {
                in_query: postgres_in_query(&e),
                ..SourceError::new(postgres_message(&e))
            };
            let mut reader = std::io::BufReader::new(
                c.copy_out(&format!("COPY (\n{q}\n) TO STDOUT"))
                    .map_err(pg)?,
            );
            let mut line = Vec::new();
            let mut r = 0;
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| SourceError::new(format!("reading the rows: {e}")))?;
                if n == 0 {
                    break;
                }
                r += 1;
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                let fields = copy_fields(&line);
                if fields.len() != cols.len() {
                    return Err(SourceError::new(format!(
                        "row {r}: {} fields from the server, for {} columns",
                        fields.len(),
                        cols.len()
                    )));
                }
                for (j, (cell, v)) in cells.iter_mut().zip(fields).enumerate() {
                    nulls[j] = v.is_none();
                    *cell = match (&cols[j].kind, v) {
                        (_, None) | (Kind::Unsupported(_), _) => String::new(),
                        (_, Some(v)) if cols[j].boolean => pg_bool(&v),
                        (_, Some(v)) => v,
                    };
                }
                add(&cells, &nulls, r)?;
            }
        }
    }
    let hex = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((header, hex))
}

/// The fields of one row of PostgreSQL's COPY text format: tab-separated, `\N` for NULL,
/// backslash escapes (`\t`, `\n`, `\\`, octal `\ooo`, hex `\xhh`, ...) undone.
fn copy_fields(line: &[u8]) -> Vec<Option<String>> {
    line.split(|b| *b == b'\t')
        .map(|f| {
            if f == b"\\N" {
                return None;
            }
            let mut out = Vec::with_capacity(f.len());
            let mut i = 0;
            while i < f.len() {
                if f[i] != b'\\' || i + 1 == f.len() {
                    out.push(f[i]);
                    i += 1;
                    continue;
                }
                let c = f[i + 1];
                i += 2;
                match c {
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'v' => out.push(11),
                    b'0'..=b'7' => {
                        let mut v = u32::from(c - b'0');
                        for _ in 0..2 {
                            match f.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    b'x' => {
                        let mut v = 0u32;
                        let mut digits = 0;
                        while digits < 2 {
                            match f.get(i).and_then(|d| (*d as char).to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d;
                                    i += 1;
                                    digits += 1;
                                }
                                None => break,
                            }
                        }
                        if digits == 0 {
                            out.push(b'x');
                        } else {
                            out.push(v as u8);
                        }
                    }
                    other => out.push(other),
                }
            }
            Some(String::from_utf8_lossy(&out).into_owned())
        })
        .collect()
}

/// A query's rows as text, read once, and the sha256 of what was read (see `sql_each`).
pub fn sql_table(url: &str, query: &str) -> Result<(Table, String), SourceError> {
    whole(|v| sql_each(url, query, v))
}

/// A query's rows in chunks of at most `chunk` rows (see `chunks`); returns the sha256 of the
/// rows.
pub fn sql_chunks<E>(
    url: &str,
    query: &str,
    chunk: usize,
    each: impl FnMut(&Table, bool) -> Result<(), E>,
    error: impl Fn(SourceError) -> E,
) -> Result<String, E> {
    chunks(chunk, each, error, |v| sql_each(url, query, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_back_as_the_same_value() {
        for x in [39.1, 3750.0, -0.5, 1e-7, 1.5e300, 0.1 + 0.2, -2.0, 0.0] {
            let t = number_text(x);
            assert_eq!(t.parse::<f64>().unwrap(), x, "{t}");
        }
        assert_eq!(number_text(3750.0), "3750");
        assert_eq!(number_text(39.1), "39.1");
        assert_eq!(number_text(f64::NAN), "");
    }

    #[test]
    fn parquet_chunks_hold_every_row_once_in_order() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in [
            "examples/data/penguins.parquet",
            "tests/data/penguins_plain.parquet",
        ] {
            let path = root.join(file);
            let whole = parquet_table(&path).unwrap();
            assert_eq!(whole.len(), 344);
            assert_eq!(whole.header.len(), 8);
            for chunk in [1, 7, 50, 344, 1000] {
                let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
                let mut calls = Vec::new();
                parquet_chunks(
                    &path,
                    chunk,
                    |t, continuing| {
                        assert_eq!(t.header, whole.header, "every chunk has the header");
                        assert!(t.len() <= chunk);
                        calls.push(continuing);
                        for r in 0..t.len() {
                            let fields = t.row(r).iter().map(|f| f.to_string()).collect();
                            rows.push((t.lines[r], fields));
                        }
                        Ok::<(), SourceError>(())
                    },
                    |e| e,
                )
                .unwrap();
                assert!(!calls[0], "the first chunk comes first");
                assert!(calls[1..].iter().all(|c| *c));
                assert_eq!(calls.len(), 344usize.div_ceil(chunk));
                let expect: Vec<(usize, Vec<String>)> = (0..whole.len())
                    .map(|r| {
                        (
                            whole.lines[r],
                            whole.row(r).iter().map(|f| f.to_string()).collect(),
                        )
                    })
                    .collect();
                assert_eq!(rows, expect, "{file} in chunks of {chunk}");
            }
        }
    }

    #[test]
    fn decimals_read_as_exact_decimal_text() {
        use parquet::data_type::Decimal;
        let t = |d: Decimal| decimal_text(&d).unwrap();
        assert_eq!(t(Decimal::from_i32(391, 4, 1)), "39.1");
        assert_eq!(t(Decimal::from_i32(-5, 4, 2)), "-0.05");
        assert_eq!(t(Decimal::from_i64(375000, 8, 2)), "3750.00");
        assert_eq!(t(Decimal::from_i32(12, 4, -2)), "1200");
        assert_eq!(t(Decimal::from_i32(0, 4, 0)), "0");
        let big = parquet::data_type::ByteArray::from(vec![0xffu8; 16]);
        assert_eq!(t(Decimal::from_bytes(big, 38, 3)), "-0.001");
        assert!(decimal_text(&Decimal::from_bytes(vec![1u8; 17].into(), 40, 0)).is_none());
    }

    #[test]
    fn sql_chunks_hold_every_row_once_in_order_with_the_tables_hash() {
        let dir = std::env::temp_dir().join(format!("mlx-sql-chunks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("t.db");
        let _ = std::fs::remove_file(&db);
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE t (a INTEGER, b TEXT, c REAL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
             INSERT INTO t SELECT i, CASE WHEN i % 4 = 0 THEN NULL ELSE 'x' || i END, i / 4.0 FROM n;",
        )
        .unwrap();
        drop(c);
        let url = format!("sqlite:{}", db.display());
        let (whole, hash) = sql_table(&url, "SELECT * FROM t ORDER BY a").unwrap();
        assert_eq!(whole.len(), 10);
        assert_eq!(whole.row(3), ["4", "", "1"]);
        assert_eq!(whole.row(4), ["5", "x5", "1.25"]);
        for chunk in [1, 3, 10, 11] {
            let mut rows = Vec::new();
            let mut calls = 0;
            let h = sql_chunks(
                &url,
                "SELECT * FROM t ORDER BY a -- every row",
                chunk,
                |t, continuing| {
                    assert_eq!(t.header, ["a", "b", "c"]);
                    assert_eq!(continuing, calls > 0);
                    calls += 1;
                    rows.extend((0..t.len()).map(|r| t.row(r).join("|")));
                    Ok::<(), SourceError>(())
                },
                |e| e,
            )
            .unwrap();
            assert_eq!(h, hash, "the same rows, the same hash");
            assert_eq!(calls, 10usize.div_ceil(chunk));
            let expect: Vec<String> = (0..10).map(|r| whole.row(r).join("|")).collect();
            assert_eq!(rows, expect);
        }
    }

    #[test]
    fn copy_text_fields_are_unescaped() {
        let f = copy_fields(b"a\\tb\t\\N\t\\\\x\t\\101\\x42\t\tend\\n");
        assert_eq!(
            f,
            vec![
                Some("a\tb".into()),
                None,
                Some("\\x".into()),
                Some("AB".into()),
                Some(String::new()),
                Some("end\n".into()),
            ]
        );
    }

    #[test]
    fn a_query_loses_what_trails_its_last_token() {
        assert_eq!(inner("SELECT * FROM t -- all rows"), "SELECT * FROM t");
        assert_eq!(inner("SELECT * FROM t; -- end\n\n"), "SELECT * FROM t");
        assert_eq!(inner("SELECT * FROM t /* c */ ;;"), "SELECT * FROM t");
        assert_eq!(
            inner("SELECT '--x;' AS \"a;--\" FROM t;"),
            "SELECT '--x;' AS \"a;--\" FROM t"
        );
        assert_eq!(inner("  SELECT 1"), "SELECT 1");
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite:data/p.db"), Some("data/p.db"));
        assert_eq!(sqlite_path("sqlite:///abs/p.db"), Some("/abs/p.db"));
        assert_eq!(sqlite_path("postgres://h/db"), None);
        assert!(url_has_password("postgres://u:secret@h/db"));
        assert!(
            url_has_password("postgres://u:secret@h:54x2/db"),
            "even malformed"
        );
        assert!(url_has_password("postgres://h/db?password=secret"));
        assert!(!url_has_password("postgres://u@h:5433/db"));
    }

    #[test]
    fn the_password_file_matches_fields_and_wildcards() {
        let dir = std::env::temp_dir().join(format!("mlx-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pgpass");
        std::fs::write(
            &f,
            "# comment\nother:5432:db:u:no\n127.0.0.1:5433:*:u:pa\\:ss\n*:*:*:*:fallback\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(
            pgpass_in(&f, "127.0.0.1", 5433, "x", "u").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(pgpass_in(&f, "h", 1, "d", "v").as_deref(), Some("fallback"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(
                pgpass_in(&f, "h", 1, "d", "v"),
                None,
                "a readable file is ignored"
            );
        }
    }
}
