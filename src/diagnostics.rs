//! Diagnostics: the one renderer-independent error type of every phase, and its one conversion
//! to a miette report (the only place in the library that knows miette).

use crate::source::{SourceMap, Span};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Advice,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

/// A problem found in user input (or, with code `mlx::internal`, a bug in mlx).
///
/// Codes are stable and documented in `ARCHITECTURE.md`; tests pin them.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    /// An internal error: a bug in mlx, reported with exit status 2.
    pub fn internal(message: impl Into<String>) -> Diagnostic {
        Diagnostic::error("mlx::internal", message).with_help(
            "this is a bug in mlx, not in your program; please report it with the input that caused it",
        )
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: self.labels.iter().all(|l| !l.primary),
        });
        self
    }

    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    /// Help for a name that is not among `candidates`: "did you mean `x`?" when one is close.
    pub fn suggest<'a>(self, name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(name, candidates) {
            Some(s) => self.with_help(format!("did you mean `{s}`?")),
            None => self,
        }
    }

    /// `suggest`, with `otherwise` as the help when no candidate is close.
    pub fn suggest_or<'a>(
        self,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
        otherwise: impl Into<String>,
    ) -> Self {
        match did_you_mean(name, candidates) {
            Some(s) => self.with_help(format!("did you mean `{s}`?")),
            None => self.with_help(otherwise),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn is_internal(&self) -> bool {
        self.code == "mlx::internal"
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, bounded(&self.message))
    }
}

/// True when any of the diagnostics is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}

/// `text` cut to at most `max` characters, with `…` where it was cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// "Did you mean" help: the candidate closest to `name` by edit distance, if close enough.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    // Edit distance costs the product of the lengths: names longer than any a person types
    // (a data file's whole first line read as one column name) are not compared.
    const LONGEST: usize = 128;
    if name.len() > LONGEST {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for c in candidates.into_iter().take(100_000) {
        if c == name || c.len() > LONGEST {
            continue;
        }
        let d = edit_distance(&name.to_lowercase(), &c.to_lowercase());
        let limit = (name.chars().count().max(c.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, bc)| d < bd || (d == bd && c < bc)) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions ("lerning" and "leanring" are both one edit from "learning").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

// ---------------------------------------------------------------------------------------------
// Rendering through miette. Nothing else in the library names miette.

/// How reports are drawn.
#[derive(Clone, Copy, Debug)]
pub struct RenderOptions {
    pub color: bool,
    pub width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            color: false,
            width: 100,
        }
    }
}

/// Render one diagnostic to text, with source snippets from `sources`.
pub fn render(diag: &Diagnostic, sources: &SourceMap, opts: RenderOptions) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if opts.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(opts.width)
        .with_links(false);
    let report = Report::build(diag, sources);
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        out = format!("{diag}\n");
    }
    out
}

/// The longest line (in bytes) a snippet of `start..end` of `text` would show: the lines it
/// covers and one on each side.
fn widest_line_near(text: &str, start: usize, end: usize) -> usize {
    let start = start.min(text.len());
    let end = end.clamp(start, text.len());
    let bytes = text.as_bytes();
    let mut from = text[..start].rfind('\n').unwrap_or(0);
    from = text[..from].rfind('\n').map_or(0, |i| i + 1);
    let mut to = text[end..].find('\n').map_or(text.len(), |i| end + i);
    if to < text.len() {
        to = text[to + 1..].find('\n').map_or(text.len(), |i| to + 1 + i);
    }
    bytes[from..to]
        .split(|b| *b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

/// Longest source line drawn in a snippet; a label near a longer one is given as
/// `file:line:column` (the renderer also cannot draw past column 65,535).
const MAX_SNIPPET_LINE: usize = 1000;

/// Most bytes of one text of a rendered diagnostic (message, help, a label): a message that
/// quotes user data (a column list, a value) stays readable however large the data.
pub const MAX_TEXT: usize = 4096;

/// `text`, cut at `MAX_TEXT` bytes (on a character boundary) with what was left out counted.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_string();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// A miette-shaped view of a `Diagnostic`: labels in the primary label's file stay here, labels
/// in other files become related reports (miette draws one source per report).
#[derive(Debug)]
struct Report {
    code: &'static str,
    severity: miette::Severity,
    message: String,
    help: Option<String>,
    source: Option<miette::NamedSource<String>>,
    labels: Vec<miette::LabeledSpan>,
    related: Vec<Report>,
}

impl Report {
    fn build(diag: &Diagnostic, sources: &SourceMap) -> Report {
        let severity = match diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Advice => miette::Severity::Advice,
        };
        let mut help = diag.help.clone();
        for note in &diag.notes {
            help = Some(match help {
                Some(h) => format!("{h}\nnote: {note}"),
                None => note.clone(),
            });
        }
        let help = help.map(|h| bounded(&h));
        let main_file = diag.primary_span().or(diag.labels.first().map(|l| l.span));
        let mut report = Report {
            code: diag.code,
            severity,
            message: bounded(&diag.message),
            help,
            source: None,
            labels: Vec::new(),
            related: Vec::new(),
        };
        let Some(main) = main_file else {
            return report;
        };
        if (main.file.0 as usize) >= sources.len() {
            return report;
        }
        let mut files = vec![main.file];
        for l in &diag.labels {
            if !files.contains(&l.span.file) && (l.span.file.0 as usize) < sources.len() {
                files.push(l.span.file);
            }
        }
        for (i, file) in files.iter().enumerate() {
            let src = sources.get(*file);
            let too_wide = diag
                .labels
                .iter()
                .filter(|l| l.span.file == *file)
                .any(|l| {
                    widest_line_near(&src.text, l.span.start as usize, l.span.end as usize)
                        > MAX_SNIPPET_LINE
                });
            if too_wide {
                let places: Vec<String> = diag
                    .labels
                    .iter()
                    .filter(|l| l.span.file == *file)
                    .map(|l| {
                        let (line, col) = src.line_col(l.span.start);
                        format!("{}:{line}:{col}: {}", src.name(), bounded(&l.message))
                    })
                    .collect();
                let text = places.join("\n");
                if i == 0 {
                    report.message = format!("{}\n{text}", report.message);
                } else {
                    report.related.push(Report {
                        code: "",
                        severity: miette::Severity::Advice,
                        message: text,
                        help: None,
                        source: None,
                        labels: Vec::new(),
                        related: Vec::new(),
                    });
                }
                continue;
            }
            let labels: Vec<miette::LabeledSpan> = diag
                .labels
                .iter()
                .filter(|l| l.span.file == *file)
                .map(|l| {
                    let start = (l.span.start as usize).min(src.text.len());
                    let len = l.span.len().min(src.text.len() - start);
                    let msg = (!l.message.is_empty()).then(|| bounded(&l.message));
                    if l.primary {
                        miette::LabeledSpan::new_primary_with_span(msg, (start, len))
                    } else {
                        miette::LabeledSpan::new_with_span(msg, (start, len))
                    }
                })
                .collect();
            let named = miette::NamedSource::new(src.name(), src.text.clone());
            if i == 0 {
                report.source = Some(named);
                report.labels = labels;
            } else {
                report.related.push(Report {
                    code: "",
                    severity: miette::Severity::Advice,
                    message: format!("in {}", src.name()),
                    help: None,
                    source: Some(named),
                    labels,
                    related: Vec::new(),
                });
            }
        }
        report
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.code.is_empty()).then(|| Box::new(self.code) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        (!self.labels.is_empty()).then(|| Box::new(self.labels.iter().cloned()) as _)
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        (!self.related.is_empty())
            .then(|| Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)) as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_pick_the_closest_name() {
        let names = ["dense", "dropout", "conv2d", "relu"];
        assert_eq!(did_you_mean("dense", names), None);
        assert_eq!(did_you_mean("dnse", names).as_deref(), Some("dense"));
        assert_eq!(did_you_mean("dropuot", names).as_deref(), Some("dropout"));
        assert_eq!(did_you_mean("xyzzy", names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
    }
}
