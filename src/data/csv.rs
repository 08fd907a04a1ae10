//! A CSV reader: header row, quoted fields (with `""` escapes, separators and newlines inside
//! quotes), `\n` or `\r\n` line ends, a configurable separator, gzip when the name ends in
//! `.gz`. Every error names the file line where it happened.

use std::io::Read;
use std::path::Path;

/// A parsed CSV file: the header and every record as text, with the line each record starts on.
/// The fields are kept compactly: one buffer of their text and the end of each field in it
/// (a `String` per field cost ~10 times the file's size for short fields).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    /// Every field's text, row after row.
    text: String,
    /// The end of each field in `text`, `width` a row.
    ends: Vec<u32>,
    /// Fields a row (set by the first row).
    width: usize,
    /// 1-based line number of each row's first line (the header is line 1).
    pub lines: Vec<usize>,
}

impl Table {
    /// A table with this header and no rows.
    pub fn new(header: Vec<String>) -> Table {
        Table {
            header,
            ..Table::default()
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The field of row `r`, column `j`.
    pub fn get(&self, r: usize, j: usize) -> &str {
        let k = r * self.width + j;
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }

    /// The fields of row `r`.
    pub fn row(&self, r: usize) -> Vec<&str> {
        (0..self.width).map(|j| self.get(r, j)).collect()
    }

    /// Add a row that starts on `line` (every row as many fields as the first).
    pub fn push<S: AsRef<str>>(&mut self, fields: &[S], line: usize) -> Result<(), CsvError> {
        if self.lines.is_empty() {
            self.width = fields.len();
        }
        for f in fields {
            self.text.push_str(f.as_ref());
            let end = u32::try_from(self.text.len()).map_err(|_| CsvError {
                line,
                message: "more than 4 GiB of field text: too large to hold in memory as one table"
                    .into(),
            })?;
            self.ends.push(end);
        }
        self.lines.push(line);
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CsvError {
    /// 1-based line, or 0 for problems with the whole file.
    pub line: usize,
    pub message: String,
}

/// Whether `path` is a regular file (following links); a device, FIFO or directory is an
/// error: reading `/dev/zero` would never end, and opening a FIFO blocks.
pub fn check_regular(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "this is a directory, not a file",
        ));
    }
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file (a device or a FIFO): mlx reads files",
        ));
    }
    Ok(())
}

/// The bytes of a regular file (`check_regular`).
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    check_regular(path)?;
    std::fs::read(path)
}

/// The UTF-8 text of a regular file (`check_regular`).
pub fn read_regular_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_regular(path)?).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Read a whole file (decompressing `.gz`) as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, CsvError> {
    let raw = read_regular(path).map_err(|e| CsvError {
        line: 0,
        message: io_message(&e),
    })?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| CsvError {
                line: 0,
                message: format!("not a valid gzip file ({e})"),
            })?;
        out
    } else {
        raw
    };
    String::from_utf8(bytes).map_err(|e| {
        let upto = e.utf8_error().valid_up_to();
        CsvError {
            line: 1 + e.as_bytes()[..upto].iter().filter(|b| **b == b'\n').count(),
            message: "the file is not valid UTF-8 text".into(),
        }
    })
}

/// The text of a data file read for its schema, kept for the load that follows in the same
/// process (`mlx run` checks, then loads): the file is read once. Keyed by path, size and
/// modification time, so a file changed in between is read again.
type Kept = (
    std::path::PathBuf,
    u64,
    Option<std::time::SystemTime>,
    std::sync::Arc<String>,
);
static KEPT: std::sync::Mutex<Vec<Kept>> = std::sync::Mutex::new(Vec::new());

fn identity(path: &Path) -> Option<(u64, Option<std::time::SystemTime>)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()))
}

/// `read_text`, keeping the text for one later `take_text` of the same unchanged file.
pub fn read_text_kept(path: &Path) -> Result<std::sync::Arc<String>, CsvError> {
    let text = std::sync::Arc::new(read_text(path)?);
    if let (Some((len, modified)), Ok(mut kept)) = (identity(path), KEPT.lock()) {
        kept.retain(|k| k.0 != path);
        kept.push((path.to_path_buf(), len, modified, text.clone()));
    }
    Ok(text)
}

/// The text `read_text_kept` kept for `path` (given up: it is not kept twice), or the file
/// read now when none was kept or it changed since.
pub fn take_text(path: &Path) -> Result<std::sync::Arc<String>, CsvError> {
    let now = identity(path);
    if let Ok(mut kept) = KEPT.lock()
        && let Some(i) = kept.iter().position(|k| k.0 == path)
    {
        let k = kept.swap_remove(i);
        if now == Some((k.1, k.2)) {
            return Ok(k.3);
        }
    }
    Ok(std::sync::Arc::new(read_text(path)?))
}

/// Give up every kept text (a command that will not load what it checked).
pub fn forget_kept() {
    if let Ok(mut kept) = KEPT.lock() {
        kept.clear();
    }
}

pub fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "the file does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "this is a directory, not a file".into(),
        _ => e.to_string(),
    }
}

pub fn read(path: &Path, sep: char) -> Result<Table, CsvError> {
    let text = read_text(path)?;
    parse(&text, sep)
}

/// Parse CSV text. Blank lines are skipped; every record must have as many fields as the header.
pub fn parse(text: &str, sep: char) -> Result<Table, CsvError> {
    let mut table = Table::default();
    let header = scan(text, sep, |_, rec, line| table.push(rec, line))?;
    table.header = header;
    Ok(table)
}

/// Read CSV text record by record without keeping it: `each` gets the header, every record
/// (as many fields as the header) and the line it starts on. Returns the header. Blank lines
/// are skipped; the header must name every column once.
pub fn scan(
    text: &str,
    sep: char,
    mut each: impl FnMut(&[String], &[String], usize) -> Result<(), CsvError>,
) -> Result<Vec<String>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Records {
        chars: text.char_indices().peekable(),
        sep,
        line: 1,
    };
    let (header_line, header) = loop {
        match records.next_record()? {
            None => {
                return Err(CsvError {
                    line: 0,
                    message: "the file is empty: a CSV file needs a header row".into(),
                });
            }
            Some((_, r)) if r.len() == 1 && r[0].is_empty() => continue,
            Some(r) => break r,
        }
    };
    let mut seen = std::collections::HashSet::new();
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            return Err(CsvError {
                line: header_line,
                message: format!("column {} of the header has no name", i + 1),
            });
        }
        if !seen.insert(h.as_str()) {
            return Err(CsvError {
                line: header_line,
                message: format!("the header names column `{h}` twice"),
            });
        }
    }
    while let Some((line, rec)) = records.next_record()? {
        if rec.len() == 1 && rec[0].is_empty() {
            continue;
        }
        if rec.len() != header.len() {
            return Err(CsvError {
                line,
                message: format!(
                    "expected {} fields (as in the header), found {}",
                    header.len(),
                    rec.len()
                ),
            });
        }
        each(&header, &rec, line)?;
    }
    Ok(header)
}

struct Records<'t> {
    chars: std::iter::Peekable<std::str::CharIndices<'t>>,
    sep: char,
    line: usize,
}

impl Records<'_> {
    /// The next record and the line it starts on; `None` at the end of the text.
    fn next_record(&mut self) -> Result<Option<(usize, Vec<String>)>, CsvError> {
        if self.chars.peek().is_none() {
            return Ok(None);
        }
        let start_line = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        loop {
            let Some((_, c)) = self.chars.next() else {
                fields.push(finish(&field, quoted, self.sep));
                return Ok(Some((start_line, fields)));
            };
            match c {
                '"' if field.trim().is_empty() && !quoted => {
                    field.clear();
                    quoted = true;
                    self.quoted_field(&mut field, start_line)?;
                }
                c if c == self.sep => {
                    fields.push(finish(&field, quoted, self.sep));
                    field.clear();
                    quoted = false;
                }
                '\r' if self.chars.peek().is_some_and(|(_, n)| *n == '\n') => {}
                '\n' => {
                    self.line += 1;
                    fields.push(finish(&field, quoted, self.sep));
                    return Ok(Some((start_line, fields)));
                }
                c => {
                    if quoted && !c.is_whitespace() {
                        return Err(CsvError {
                            line: self.line,
                            message: format!("unexpected `{c}` after a closing quote"),
                        });
                    }
                    field.push(c);
                    if field.len() > MAX_FIELD {
                        return Err(too_long(start_line));
                    }
                }
            }
        }
    }

    fn quoted_field(&mut self, field: &mut String, start_line: usize) -> Result<(), CsvError> {
        loop {
            match self.chars.next() {
                None => {
                    return Err(CsvError {
                        line: start_line,
                        message: "a quoted field is never closed".into(),
                    });
                }
                Some((_, '"')) => {
                    if self.chars.peek().is_some_and(|(_, n)| *n == '"') {
                        self.chars.next();
                        field.push('"');
                    } else {
                        return Ok(());
                    }
                }
                Some((_, '\n')) => {
                    self.line += 1;
                    field.push('\n');
                }
                Some((_, c)) => {
                    field.push(c);
                    if field.len() > MAX_FIELD {
                        return Err(too_long(start_line));
                    }
                }
            }
        }
    }
}

/// The longest field read (1 MiB): a longer one is not tabular data (a file without line
/// breaks, or the wrong separator), and is refused before it costs memory or makes
/// diagnostics that quote it enormous.
pub const MAX_FIELD: usize = 1 << 20;

fn too_long(line: usize) -> CsvError {
    CsvError {
        line,
        message: format!(
            "a field longer than {} MiB: this is not a CSV file with this separator (no line breaks, or another separator?)",
            MAX_FIELD >> 20
        ),
    }
}

fn finish(field: &str, quoted: bool, sep: char) -> String {
    if quoted || sep == ' ' || sep == '\t' {
        field.to_string()
    } else {
        field.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_escapes_and_line_numbers() {
        let t = parse(
            "a,b,c\n1,\"x, y\",3\r\n\n4,\"he said \"\"hi\"\"\",\"multi\nline\"\n7,8,9",
            ',',
        )
        .unwrap();
        assert_eq!(t.header, ["a", "b", "c"]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.row(0), ["1", "x, y", "3"]);
        assert_eq!(t.row(1), ["4", "he said \"hi\"", "multi\nline"]);
        assert_eq!(t.row(2), ["7", "8", "9"]);
        assert_eq!(t.get(1, 2), "multi\nline");
        assert_eq!(t.lines, [2, 4, 6]);
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let e = parse("a,b\n1,2\n3\n", ',').unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("expected 2 fields"), "{}", e.message);
        let e = parse("a,b\n1,\"2\n", ',').unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("never closed"));
        let e = parse("", ',').unwrap_err();
        assert_eq!(e.line, 0);
        let e = parse("a,a\n1,2\n", ',').unwrap_err();
        assert!(e.message.contains("twice"));
    }

    #[test]
    fn other_separators() {
        let t = parse("a;b\n1;2,5\n", ';').unwrap();
        assert_eq!(t.row(0), ["1", "2,5"]);
        let t = parse("a\tb\n1\t2\n", '\t').unwrap();
        assert_eq!(t.row(0), ["1", "2"]);
    }
}
