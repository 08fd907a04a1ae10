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

/// `n field` or `n fields`.
fn fields(n: usize) -> String {
    format!("{n} field{}", if n == 1 { "" } else { "s" })
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
    each: impl FnMut(&[String], &[String], usize) -> Result<(), CsvError>,
) -> Result<Vec<String>, CsvError> {
    scan_chars(text.chars(), sep, each)
}

/// `scan` over a file, read a block at a time (and decompressed, for `.gz`): only one block
/// of its text is held at once, whatever its size.
pub fn scan_file(
    path: &Path,
    sep: char,
    each: impl FnMut(&[String], &[String], usize) -> Result<(), CsvError>,
) -> Result<Vec<String>, CsvError> {
    scan_file_showing(path, sep, false, each)
}

/// Files from this size on get a progress bar when `scan_file_showing` is asked for one.
const SHOWN_FROM: u64 = 256 << 20;

/// `scan_file`, drawing a bar of the bytes read on standard error when `progress` is asked
/// for, standard error is a terminal and the file is large (a schema pass over gigabytes).
pub fn scan_file_showing(
    path: &Path,
    sep: char,
    progress: bool,
    each: impl FnMut(&[String], &[String], usize) -> Result<(), CsvError>,
) -> Result<Vec<String>, CsvError> {
    let io = |e: std::io::Error| CsvError {
        line: 0,
        message: io_message(&e),
    };
    check_regular(path).map_err(io)?;
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_or(0, |m| m.len());
    let file: Box<dyn Read> =
        if progress && size >= SHOWN_FROM && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let bar = indicatif::ProgressBar::new(size);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            bar.set_message(format!("reading {name}"));
            Box::new(Shown { inner: file, bar })
        } else {
            Box::new(file)
        };
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        file
    };
    let mut chars = FileChars::new(reader, 1 << 20);
    chars.gzip = gzip;
    let scanned = scan_file_chars(&mut chars, sep, each);
    // A bad byte or a failed read ends the characters early: that is the error to report.
    chars.failure().map_or(scanned, Err)
}

/// A reader that moves a progress bar by the bytes read, and clears it when dropped.
struct Shown<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for Shown<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

impl<R> Drop for Shown<R> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The characters of a reader, decoded from UTF-8 a block at a time. A read error or an
/// invalid byte sequence ends them; `failure` then says what happened, and on which line.
pub struct FileChars {
    reader: Box<dyn Read>,
    block: usize,
    /// Bytes read but not yet decoded (an incomplete character at the end of a block).
    pending: Vec<u8>,
    text: String,
    at: usize,
    /// Newlines decoded so far.
    newlines: usize,
    failed: Option<String>,
    /// A failure met while reading ahead, reported when the characters reach it.
    pending_failure: Option<String>,
    eof: bool,
    /// The reader decompresses gzip: its read errors are the file's not being gzip.
    pub gzip: bool,
}

impl FileChars {
    pub fn new(reader: Box<dyn Read>, block: usize) -> FileChars {
        FileChars {
            reader,
            block: block.max(4),
            pending: Vec::new(),
            text: String::new(),
            at: 0,
            newlines: 0,
            failed: None,
            pending_failure: None,
            eof: false,
            gzip: false,
        }
    }

    /// Why the characters ended early, if they did.
    pub fn failure(&self) -> Option<CsvError> {
        self.failed.as_ref().map(|m| CsvError {
            line: self.newlines + 1,
            message: m.clone(),
        })
    }

    /// Decode the next block into `text`; false at the end. A read error or an invalid byte
    /// is kept until the characters before it are used up, so the failure is reported at its
    /// own line, and only if the scan gets that far (an earlier malformed row is reported first).
    fn refill(&mut self) -> bool {
        self.text.clear();
        self.at = 0;
        while self.text.is_empty() && self.failed.is_none() && !self.eof {
            if let Some(f) = self.pending_failure.take() {
                self.failed = Some(f);
                break;
            }
            let start = self.pending.len();
            self.pending.resize(start + self.block, 0);
            let n = loop {
                match self.reader.read(&mut self.pending[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.pending_failure = Some(if self.gzip {
                            format!("not a valid gzip file ({e})")
                        } else {
                            io_message(&e)
                        });
                        break 0;
                    }
                }
            };
            self.pending.truncate(start + n);
            if n == 0 && self.pending_failure.is_none() {
                self.eof = true;
            }
            let valid = match std::str::from_utf8(&self.pending) {
                Ok(t) => t.len(),
                // An incomplete character at the end of the block: the next read ends it.
                Err(e)
                    if e.error_len().is_none() && !self.eof && self.pending_failure.is_none() =>
                {
                    e.valid_up_to()
                }
                Err(e) => {
                    if self.pending_failure.is_none() {
                        self.pending_failure = Some("the file is not valid UTF-8 text".into());
                    }
                    e.valid_up_to()
                }
            };
            // `valid` bytes were just checked to be UTF-8.
            self.text
                .push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
            self.pending.drain(..valid);
            if self.pending_failure.is_some() {
                // Nothing after the failure is read.
                self.pending.clear();
                if self.text.is_empty() {
                    self.failed = self.pending_failure.take();
                }
            }
        }
        !self.text.is_empty()
    }
}

impl Iterator for FileChars {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.at >= self.text.len() && !self.refill() {
            return None;
        }
        let c = self.text[self.at..].chars().next()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.newlines += 1;
        }
        Some(c)
    }
}

/// `scan` over any characters.
pub fn scan_chars(
    chars: impl Iterator<Item = char>,
    sep: char,
    each: impl FnMut(&[String], &[String], usize) -> Result<(), CsvError>,
) -> Result<Vec<String>, CsvError> {
    let mut chars = chars.peekable();
    if chars.peek() == Some(&'\u{feff}') {
        chars.next();
    }
    let mut line = 1;
    scan_records(|rec| next_record(&mut chars, sep, &mut line, rec), each)
}

/// `scan` over a file's characters: a record on one line (almost every record) is cut
/// straight from the decoded block, its fields written into the same strings record after
/// record; any other record is read a character at a time.
fn scan_file_chars(
    chars: &mut FileChars,
    sep: char,
    each: impl FnMut(&[String], &[String], usize) -> Result<(), CsvError>,
) -> Result<Vec<String>, CsvError> {
    if chars.at >= chars.text.len() {
        chars.refill();
    }
    if chars.text[chars.at..].starts_with('\u{feff}') {
        chars.at += '\u{feff}'.len_utf8();
    }
    let mut line = 1;
    scan_records(
        |rec| match chars.simple_line(sep, rec, &mut line)? {
            Line::Record(l) => Ok(Some(l)),
            Line::End => Ok(None),
            Line::Other => next_record(&mut (&mut *chars).peekable(), sep, &mut line, rec),
        },
        each,
    )
}

/// The header and records `next` gives (it fills the record and says its line, or `None` at
/// the end): blank lines skipped, the header's names checked, every record as wide as it.
fn scan_records(
    mut next: impl FnMut(&mut Vec<String>) -> Result<Option<usize>, CsvError>,
    mut each: impl FnMut(&[String], &[String], usize) -> Result<(), CsvError>,
) -> Result<Vec<String>, CsvError> {
    let mut rec: Vec<String> = Vec::new();
    let header_line = loop {
        match next(&mut rec)? {
            None => {
                return Err(CsvError {
                    line: 0,
                    message: "the file is empty: a CSV file needs a header row".into(),
                });
            }
            Some(_) if rec.len() == 1 && rec[0].is_empty() => continue,
            Some(l) => break l,
        }
    };
    let header = rec.clone();
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
    while let Some(line) = next(&mut rec)? {
        if rec.len() == 1 && rec[0].is_empty() {
            continue;
        }
        if rec.len() != header.len() {
            return Err(CsvError {
                line,
                message: format!(
                    "expected {} (as in the header), found {}{}",
                    fields(header.len()),
                    rec.len(),
                    if header.len() == 1 {
                        " (a header of one field: is this CSV text, with this separator?)"
                    } else {
                        ""
                    }
                ),
            });
        }
        each(&header, &rec, line)?;
    }
    Ok(header)
}

/// What the fast path found at the start of a record.
enum Line {
    /// A record on one line, read; it starts on this line.
    Record(usize),
    /// The end of the characters.
    End,
    /// A record the character-at-a-time reader must read (quotes, or it crosses a block).
    Other,
}

impl FileChars {
    /// The next record if it is one line within the decoded block (quoted fields included,
    /// unless a newline is inside their quotes or text follows a closing quote).
    fn simple_line(
        &mut self,
        sep: char,
        out: &mut Vec<String>,
        line: &mut usize,
    ) -> Result<Line, CsvError> {
        if self.at >= self.text.len() && !self.refill() {
            return Ok(Line::End);
        }
        let rest = &self.text[self.at..];
        let Some(nl) = rest.bytes().position(|b| b == b'\n') else {
            return Ok(Line::Other);
        };
        let body = &rest[..nl];
        let body = body.strip_suffix('\r').unwrap_or(body);
        // Quotes with a separator that is itself a space: where a quoted field starts and
        // ends is the careful reader's to say.
        if sep.is_whitespace() && body.contains('"') {
            return Ok(Line::Other);
        }
        let trim = !(sep == ' ' || sep == '\t');
        let mut n = 0;
        let mut i = 0;
        loop {
            if n == out.len() {
                out.push(String::new());
            }
            let field = &mut out[n];
            field.clear();
            n += 1;
            let rest = &body[i..];
            let lead = rest.len() - rest.trim_start().len();
            if rest[lead..].starts_with('"') {
                // A quoted field: to its closing quote (`""` is a quote), then the separator
                // or the end of the line.
                let mut j = i + lead + 1;
                loop {
                    let Some(k) = body[j..].find('"') else {
                        // Its newline is inside the quotes.
                        return Ok(Line::Other);
                    };
                    field.push_str(&body[j..j + k]);
                    j += k + 1;
                    if body[j..].starts_with('"') {
                        field.push('"');
                        j += 1;
                    } else {
                        break;
                    }
                }
                if field.len() > MAX_FIELD {
                    return Err(too_long(*line));
                }
                if j == body.len() {
                    break;
                }
                if !body[j..].starts_with(sep) {
                    // Anything after the closing quote (kept spaces, or a mistake the careful
                    // reader reports at its place).
                    return Ok(Line::Other);
                }
                i = j + sep.len_utf8();
            } else {
                let (f, more) = match rest.find(sep) {
                    Some(k) => (&rest[..k], Some(i + k + sep.len_utf8())),
                    None => (rest, None),
                };
                if f.len() > MAX_FIELD {
                    return Err(too_long(*line));
                }
                field.push_str(if trim { f.trim() } else { f });
                match more {
                    Some(next) => i = next,
                    None => break,
                }
            }
        }
        out.truncate(n);
        self.at += nl + 1;
        self.newlines += 1;
        let start = *line;
        *line += 1;
        Ok(Line::Record(start))
    }
}

/// The next record and the line it starts on (`None` at the end of the characters), a
/// character at a time.
fn next_record<I: Iterator<Item = char>>(
    chars: &mut std::iter::Peekable<I>,
    sep: char,
    line: &mut usize,
    fields: &mut Vec<String>,
) -> Result<Option<usize>, CsvError> {
    if chars.peek().is_none() {
        return Ok(None);
    }
    fields.clear();
    let start_line = *line;
    let mut field = String::new();
    let mut quoted = false;
    loop {
        let Some(c) = chars.next() else {
            fields.push(finish(&field, quoted, sep));
            return Ok(Some(start_line));
        };
        match c {
            '"' if field.trim().is_empty() && !quoted => {
                field.clear();
                quoted = true;
                quoted_field(chars, line, &mut field, start_line)?;
            }
            c if c == sep => {
                fields.push(finish(&field, quoted, sep));
                field.clear();
                quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                *line += 1;
                fields.push(finish(&field, quoted, sep));
                return Ok(Some(start_line));
            }
            c => {
                if quoted && !c.is_whitespace() {
                    return Err(CsvError {
                        line: *line,
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

fn quoted_field<I: Iterator<Item = char>>(
    chars: &mut std::iter::Peekable<I>,
    line: &mut usize,
    field: &mut String,
    start_line: usize,
) -> Result<(), CsvError> {
    loop {
        match chars.next() {
            None => {
                return Err(CsvError {
                    line: start_line,
                    message: "a quoted field is never closed".into(),
                });
            }
            Some('"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    return Ok(());
                }
            }
            Some('\n') => {
                *line += 1;
                field.push('\n');
            }
            Some(c) => {
                field.push(c);
                if field.len() > MAX_FIELD {
                    return Err(too_long(start_line));
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

    /// A header and every record with its line.
    type Scanned = (Vec<String>, Vec<(usize, Vec<String>)>);

    /// Every record `scan` gives, with its line.
    fn records(
        scanned: impl FnOnce(
            &mut dyn FnMut(&[String], &[String], usize) -> Result<(), CsvError>,
        ) -> Result<Vec<String>, CsvError>,
    ) -> Result<Scanned, CsvError> {
        let mut out = Vec::new();
        let header = scanned(&mut |_, r, l| {
            out.push((l, r.to_vec()));
            Ok(())
        })?;
        Ok((header, out))
    }

    #[test]
    fn a_file_read_a_block_at_a_time_scans_as_its_whole_text() {
        // Multi-byte characters, quoted line breaks, CRLF and a byte-order mark, cut at every
        // block size: characters and records split across blocks.
        let text =
            "\u{feff}name,note,x\r\nzoë,\"a, \"\"b\"\"\nc\",1\n\n€uro,日本語,2.5\n\"q\",\"\",3";
        let whole = records(|f| scan(text, ',', f)).unwrap();
        assert_eq!(whole.1.len(), 3);
        for block in 1..24 {
            let chars = FileChars::new(
                Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
                block,
            );
            let mut chars = chars;
            let got = records(|f| scan_chars(&mut chars, ',', f)).unwrap();
            assert!(chars.failure().is_none());
            assert_eq!(got, whole, "block of {block} bytes");
        }
        // And through a file, gzipped or not.
        let dir = std::env::temp_dir().join(format!("mlx-csv-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("t.csv");
        std::fs::write(&plain, text).unwrap();
        assert_eq!(records(|f| scan_file(&plain, ',', f)).unwrap(), whole);
        let gz = dir.join("t.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, text.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(records(|f| scan_file(&gz, ',', f)).unwrap(), whole);
        // Invalid UTF-8 on line 3 is reported there, whatever the block.
        let mut bad = b"a,b\n1,2\n3,\xff\n4,5\n".to_vec();
        let badf = dir.join("bad.csv");
        std::fs::write(&badf, &bad).unwrap();
        let e = records(|f| scan_file(&badf, ',', f)).unwrap_err();
        assert_eq!(e.line, 3, "{e:?}");
        assert!(e.message.contains("UTF-8"), "{e:?}");
        // A malformed row before the bad byte is the error reported, at its line.
        let early = dir.join("early.csv");
        let mut text = b"a,b\n1\n".to_vec();
        for _ in 0..1000 {
            text.extend_from_slice(b"3,4\n");
        }
        text.extend_from_slice(b"5,\xff\n");
        std::fs::write(&early, &text).unwrap();
        let e = records(|f| scan_file(&early, ',', f)).unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.contains("expected 2 fields"), "{e:?}");
        // A truncated multi-byte character at the very end.
        bad.truncate(8);
        bad.extend_from_slice("é".as_bytes().split_at(1).0);
        std::fs::write(&badf, &bad).unwrap();
        let e = records(|f| scan_file(&badf, ',', f)).unwrap_err();
        assert!(e.message.contains("UTF-8"), "{e:?}");
        // A gzip file that is not one.
        std::fs::write(&gz, b"not gzip").unwrap();
        let e = records(|f| scan_file(&gz, ',', f)).unwrap_err();
        assert!(e.message.contains("gzip"), "{e:?}");
    }

    #[test]
    fn other_separators() {
        let t = parse("a;b\n1;2,5\n", ';').unwrap();
        assert_eq!(t.row(0), ["1", "2,5"]);
        let t = parse("a\tb\n1\t2\n", '\t').unwrap();
        assert_eq!(t.row(0), ["1", "2"]);
    }

    /// A scan's header and records (with their lines).
    type Outcome = Result<(Vec<String>, Vec<(Vec<String>, usize)>), CsvError>;
    /// A record callback, as the scanners take it.
    type Each<'a> = &'a mut dyn FnMut(&[String], &[String], usize) -> Result<(), CsvError>;

    /// The block reader's one-line fast path gives exactly what the character-at-a-time
    /// reader gives (fields, or the error and its line) on text made of the characters that
    /// matter: quotes, separators, spaces, tabs, carriage returns, a no-break space, newlines.
    #[test]
    fn the_fast_path_reads_exactly_as_the_careful_reader() {
        let dir = std::env::temp_dir().join(format!("mlx-csv-fast-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        let alphabet = [
            'a', 'b', ',', '"', ' ', '\t', '\r', '\u{a0}', ';', '\n', '1',
        ];
        let mut rng = crate::rng::Rng::new(11, "csv-fast");
        let outcome = |r: Outcome| match r {
            Ok(x) => format!("{x:?}"),
            Err(e) => format!("error at {}: {}", e.line, e.message),
        };
        let mut fast_lines = 0;
        for case in 0..4000 {
            let sep = [',', '\t', ' ', ';', '\u{a0}'][case % 5];
            // Lines of mostly three fields: plain, padded, quoted (holding separators,
            // doubled quotes, newlines, spaces around), or random characters.
            let field = |rng: &mut crate::rng::Rng| -> String {
                let pick = |rng: &mut crate::rng::Rng, set: &[&str], n: usize| -> String {
                    (0..n)
                        .map(|_| set[rng.below(set.len() as u64) as usize])
                        .collect()
                };
                let sp = |rng: &mut crate::rng::Rng| pick(rng, &["", " ", "\t", "\u{a0}"], 1);
                match rng.below(4) {
                    0 => {
                        let n = 1 + rng.below(3) as usize;
                        pick(rng, &["a", "b", "1"], n)
                    }
                    1 => format!("{}{}{}", sp(rng), pick(rng, &["a", "1"], 2), sp(rng)),
                    2 => {
                        let n = rng.below(5) as usize;
                        let inner = pick(rng, &["a", ",", ";", " ", "\t", "\"\"", "\n", "\r"], n);
                        format!("{}\"{inner}\"{}", sp(rng), sp(rng))
                    }
                    _ => {
                        let n = rng.below(6) as usize;
                        (0..n)
                            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                            .collect()
                    }
                }
            };
            let mut text = String::new();
            for _ in 0..1 + case % 4 {
                let width = [3, 3, 3, 2, 4, 3, 3][case % 7];
                let fields: Vec<String> = (0..width).map(|_| field(&mut rng)).collect();
                text.push_str(&fields.join(&sep.to_string()));
                text.push_str(if case % 3 == 0 { "\r\n" } else { "\n" });
            }
            // Most cases get a well-formed header so that records are compared too.
            if case % 4 != 0 {
                text = format!("h1{sep}h2{sep}h3\n{text}");
            }
            std::fs::write(&path, &text).unwrap();
            let collect =
                |scan: &mut dyn FnMut(Each<'_>) -> Result<Vec<String>, CsvError>| -> Outcome {
                    let mut rows = Vec::new();
                    let header = scan(&mut |_, rec, line| {
                        rows.push((rec.to_vec(), line));
                        Ok(())
                    })?;
                    Ok((header, rows))
                };
            let careful = collect(&mut |f| scan(&text, sep, f));
            let fast = collect(&mut |f| scan_file(&path, sep, f));
            if fast.as_ref().is_ok_and(|(_, rows)| !rows.is_empty()) {
                fast_lines += 1;
            }
            assert_eq!(
                outcome(fast),
                outcome(careful),
                "text {text:?}, separator {sep:?}"
            );
        }
        assert!(fast_lines > 300, "{fast_lines} cases read records");
    }
}
