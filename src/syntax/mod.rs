//! Parsing: source text -> `ast::Module` plus diagnostics. Parsing never fails: a file with
//! syntax errors yields the items that did parse and one diagnostic per broken item.

pub mod ast;
mod errors;
mod parser;
pub mod print;

use crate::diagnostics::Diagnostic;
use crate::source::{FileId, Span};
use parser::{Builder, MlxParser, Rule};
use pest::Parser;

/// Keywords that start a top-level item; recovery cuts the file before each one found at the
/// start of a line.
const ITEM_KEYWORDS: [&str; 6] = ["use", "const", "dataset", "model", "train", "sweep"];

/// The deepest bracket nesting (`(`, `[`, `{`) and the longest run of prefix `-` the parser
/// accepts. The parser recurses once per level, so deeper input is refused before parsing.
pub const MAX_NESTING: usize = 256;

/// The deepest expression tree accepted (a chain of `|>`, `+` or calls nests as deep as it is
/// long). Later phases recurse over expressions, on a stack sized for this (see the driver).
pub const MAX_EXPR_DEPTH: usize = 20_000;

/// The code of both depth limits.
pub const TOO_DEEP: &str = "mlx::syntax::too_deep";

/// Parse one file.
pub fn parse(file: FileId, text: &str) -> (ast::Module, Vec<Diagnostic>) {
    pest::set_error_detail(true);
    let (mut module, mut diags) = if too_deep(text).is_some() {
        recover(file, text, None)
    } else {
        match MlxParser::parse(Rule::file, text) {
            Ok(mut pairs) => {
                let b = Builder { file, base: 0 };
                let items = pairs.next().map(|p| b.items(p)).unwrap_or_default();
                (
                    ast::Module {
                        file,
                        items,
                        broken: Vec::new(),
                    },
                    Vec::new(),
                )
            }
            Err(whole) => recover(file, text, Some(whole)),
        }
    };
    drop_too_deep_items(&mut module, &mut diags);
    (module, diags)
}

/// Where `text` (outside strings and comments) nests brackets more than `MAX_NESTING` deep or
/// has a longer run of `-` signs: the byte range of the token that goes too deep.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let (mut in_string, mut in_comment, mut escaped) = (false, false, false);
    let (mut depth, mut minus) = (0usize, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        if in_comment {
            in_comment = b != b'\n';
            continue;
        }
        if in_string {
            match b {
                b'\\' => escaped = !escaped,
                b'"' | b'\n' if !escaped => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'/' if bytes.get(i + 1) == Some(&b'/') => in_comment = true,
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        match b {
            b'-' if bytes.get(i + 1) != Some(&b'>') => minus += 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => minus = 0,
        }
        if depth > MAX_NESTING || minus > MAX_NESTING {
            return Some((i, i + 1));
        }
    }
    None
}

fn too_deep_diagnostic(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(TOO_DEEP, format!("{what} is nested too deeply"))
        .with_label(span, "too deep here")
        .with_help(format!(
            "mlx accepts {MAX_NESTING} levels of brackets or `-` signs and expressions {MAX_EXPR_DEPTH} \
             operations deep; split the expression with `let` or `const`"
        ))
}

/// Items whose expressions nest deeper than `MAX_EXPR_DEPTH` are reported and left out (as
/// broken items), so no later phase recurses over them.
fn drop_too_deep_items(module: &mut ast::Module, diags: &mut Vec<Diagnostic>) {
    let mut keep = Vec::with_capacity(module.items.len());
    for item in std::mem::take(&mut module.items) {
        // Labelled at the start of the outermost expression: where the chain begins.
        let deep = item
            .exprs()
            .into_iter()
            .find(|e| e.deeper_than(MAX_EXPR_DEPTH).is_some())
            .map(|e| e.span);
        match deep {
            Some(span) => {
                let at = Span::new(span.file, span.start as usize, span.start as usize + 1);
                diags.push(too_deep_diagnostic(at, "this expression"));
                module
                    .broken
                    .push((item.name().map(|n| n.name.clone()), item.span()));
            }
            None => keep.push(item),
        }
    }
    module.items = keep;
}

/// Parse one expression (the value of `--set key=value`).
pub fn parse_expr(file: FileId, text: &str) -> Result<ast::Expr, Diagnostic> {
    pest::set_error_detail(true);
    if let Some((a, b)) = too_deep(text) {
        return Err(too_deep_diagnostic(Span::new(file, a, b), "this value"));
    }
    match MlxParser::parse(Rule::single_expr, text) {
        Ok(mut pairs) => {
            let b = Builder { file, base: 0 };
            let inner = pairs.next().and_then(|p| p.into_inner().next());
            match inner {
                Some(e) => {
                    let e = b.expr(e);
                    match e.deeper_than(MAX_EXPR_DEPTH) {
                        Some(_) => Err(too_deep_diagnostic(
                            Span::new(file, e.span.start as usize, e.span.start as usize + 1),
                            "this value",
                        )),
                        None => Ok(e),
                    }
                }
                None => Err(
                    Diagnostic::error("mlx::syntax::unexpected", "expected a value")
                        .with_label(Span::new(file, 0, text.len()), "empty"),
                ),
            }
        }
        Err(e) => Err(errors::to_diagnostic(file, text, 0, text, &e)),
    }
}

/// Parse item by item so that every broken item gets its own diagnostic and the good ones are
/// still checked.
fn recover(
    file: FileId,
    text: &str,
    whole: Option<pest::error::Error<Rule>>,
) -> (ast::Module, Vec<Diagnostic>) {
    let mut items = Vec::new();
    let mut broken = Vec::new();
    let mut diags = Vec::new();
    let chunks = item_chunks(text);
    for (start, end) in &chunks {
        let chunk = &text[*start..*end];
        if chunk.trim().is_empty() || is_only_comments(chunk) {
            continue;
        }
        if let Some((a, b)) = too_deep(chunk) {
            let span = Span::new(file, *start, *end);
            broken.push((declared_name(chunk), span));
            diags.push(too_deep_diagnostic(
                Span::new(file, start + a, start + b),
                "this item",
            ));
            continue;
        }
        match MlxParser::parse(Rule::single_item, chunk) {
            Ok(mut pairs) => {
                let b = Builder { file, base: *start };
                if let Some(p) = pairs.next() {
                    items.extend(b.items(p));
                }
            }
            Err(e) => {
                let span = Span::new(file, *start, *end);
                broken.push((declared_name(chunk), span));
                diags.push(errors::to_diagnostic(file, text, *start, chunk, &e));
            }
        }
    }
    if let (true, Some(whole)) = (diags.is_empty(), whole) {
        // The chunks parsed one by one but not together (an unusual layout): report the error
        // pest found in the whole file.
        diags.push(errors::to_diagnostic(file, text, 0, text, &whole));
        broken.push((None, Span::new(file, 0, text.len())));
    }
    (
        ast::Module {
            file,
            items,
            broken,
        },
        diags,
    )
}

/// Byte ranges of the file split before each item keyword at the start of a line (outside
/// strings and comments).
fn item_chunks(text: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    let bytes = text.as_bytes();
    let (mut in_string, mut in_comment, mut escaped) = (false, false, false);
    let mut line_start = true;
    for (i, &b) in bytes.iter().enumerate() {
        if line_start && !in_string && i > 0 && starts_item(&text[i..]) {
            starts.push(i);
        }
        line_start = false;
        match b {
            b'\n' => {
                in_comment = false;
                // Strings do not span lines in the grammar: a newline ends a broken one.
                in_string = false;
                line_start = true;
            }
            _ if in_comment => {}
            b'\\' if in_string => {
                escaped = !escaped;
                continue;
            }
            b'"' if !escaped => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => in_comment = true,
            _ => {}
        }
        escaped = false;
    }
    let mut out = Vec::new();
    for (i, s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(text.len());
        out.push((*s, e));
    }
    out
}

fn starts_item(line: &str) -> bool {
    ITEM_KEYWORDS.iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| rest.starts_with([' ', '\t', '"']))
    })
}

fn is_only_comments(chunk: &str) -> bool {
    chunk
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with("//"))
}

/// The name an item declares, read from its first line: `model lenet(` gives `lenet`.
fn declared_name(chunk: &str) -> Option<String> {
    let rest = chunk.trim_start();
    let kw = ITEM_KEYWORDS
        .iter()
        .find(|k| rest.starts_with(*k) && *k != &"use")?;
    let after = rest[kw.len()..].trim_start();
    let name: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests;
