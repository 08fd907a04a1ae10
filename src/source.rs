//! Source files and spans: a `SourceMap` owns every file the driver loaded (user files and the
//! embedded stdlib), and a `Span` names a byte range in one of them.

use std::path::{Path, PathBuf};

/// Index of a file in the `SourceMap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range `start..end` in one source file. Every AST and HIR node carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both (which must be in the same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

/// Where a source file came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk (absolute or as given on the command line).
    Disk(PathBuf),
    /// A stdlib module embedded in the binary, e.g. `std.nn`.
    Stdlib(String),
    /// Text given directly (tests, `--set` values).
    Virtual(String),
}

#[derive(Clone, Debug)]
pub struct SourceFile {
    pub origin: Origin,
    pub text: String,
}

impl SourceFile {
    /// The name shown in diagnostics.
    pub fn name(&self) -> String {
        match &self.origin {
            Origin::Disk(p) => p.display().to_string(),
            Origin::Stdlib(m) => format!("<{m}>"),
            Origin::Virtual(n) => n.clone(),
        }
    }

    pub fn is_stdlib(&self) -> bool {
        matches!(self.origin, Origin::Stdlib(_))
    }

    /// Directory against which relative paths in this file resolve.
    pub fn dir(&self) -> Option<&Path> {
        match &self.origin {
            Origin::Disk(p) => p.parent(),
            _ => None,
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    pub fn snippet(&self, span: Span) -> &str {
        let s = floor_char_boundary(&self.text, span.start as usize);
        let e = floor_char_boundary(&self.text, span.end as usize);
        &self.text[s..e.max(s)]
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Every source file of one compilation.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, origin: Origin, text: String) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile { origin, text });
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn find(&self, origin: &Origin) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| &f.origin == origin)
            .map(|i| FileId(i as u32))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }
}
