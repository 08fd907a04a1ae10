//! Turns pest's errors into sentences: "expected `}` to close the `model` block opened here",
//! never rule names.

use super::parser::Rule;
use crate::diagnostics::Diagnostic;
use crate::source::{FileId, Span};
use pest::error::{ErrorVariant, InputLocation};
use std::collections::BTreeSet;

pub(super) fn to_diagnostic(
    file: FileId,
    text: &str,
    base: usize,
    chunk: &str,
    e: &pest::error::Error<Rule>,
) -> Diagnostic {
    let pest_pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let attempts = e.parse_attempts();
    // The furthest point the parser reached says most about what is wrong.
    let local = attempts
        .as_ref()
        .map(|a| a.max_position)
        .filter(|p| *p >= pest_pos && *p <= chunk.len())
        .unwrap_or(pest_pos);
    let pos = (base + local).min(text.len());
    let found = describe_found(text, pos);
    let found_span = Span::new(file, pos, pos + found_len(text, pos));

    if let Some(open) = open_string_on_line(text, pos) {
        return Diagnostic::error("mlx::syntax::unclosed", "this string is never closed")
            .with_label(Span::new(file, open, open + 1), "the string starts here")
            .with_help("end the string with `\"` on the same line");
    }

    let mut expected = BTreeSet::new();
    let mut tokens = BTreeSet::new();
    if let Some(a) = &attempts {
        for t in a.expected_tokens() {
            let t = t.to_string();
            if !t.trim().is_empty() && t != "//" {
                tokens.insert(t);
            }
        }
        for stack in &a.call_stacks {
            if let Some(r) = stack.deepest.get_rule()
                && let Some(h) = rule_phrase(*r)
            {
                expected.insert(h.to_string());
            }
        }
    }
    if expected.is_empty()
        && let ErrorVariant::ParsingError { positives, .. } = &e.variant
    {
        for r in positives {
            if let Some(h) = rule_phrase(*r) {
                expected.insert(h.to_string());
            }
        }
    }
    let wants_expr = expected.contains("an expression");
    let structural = tokens.iter().any(|t| is_structural(t));
    for t in &tokens {
        if (wants_expr && starts_expression(t)) || (structural && is_operator(t)) {
            continue;
        }
        if is_operator(t) && !tokens.iter().all(|t| is_operator(t)) {
            continue;
        }
        expected.insert(format!("`{t}`"));
    }
    if structural {
        // After a complete expression, operators and calls are always possible: not news.
        expected.retain(|x| !matches!(x.as_str(), "`(`" | "`.`" | "`|>`"));
    }

    // An unclosed bracket explains most errors at the end of the file or at the next item.
    let at_boundary =
        pos >= text.len().saturating_sub(trailing_ws(text)) || at_item_start(text, pos);
    if at_boundary && let Some(open) = innermost_unclosed(text, pos) {
        let (closer, what) = match open.bracket {
            '{' => ("}", format!("{} block", block_kind(text, open.at))),
            '(' => (")", "parenthesis".to_string()),
            _ => ("]", "bracket".to_string()),
        };
        let open_span = Span::new(file, open.at, open.at + 1);
        let here = if pos >= text.len().saturating_sub(trailing_ws(text)) {
            "the file ends here".to_string()
        } else {
            format!("{found} starts here")
        };
        return Diagnostic::error(
            "mlx::syntax::unclosed",
            format!("expected `{closer}` to close the {what} opened here"),
        )
        .with_label(found_span, here)
        .with_secondary(
            open_span,
            format!("this `{}` is never closed", open.bracket),
        )
        .with_help(format!("add `{closer}` where the {what} should end"));
    }

    let list = join_alternatives(&expected);
    let message = if list.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {list}, found {found}")
    };
    let mut d = Diagnostic::error("mlx::syntax::unexpected", message)
        .with_label(found_span, format!("unexpected {found}"));
    if let Some(h) = hint(text, pos, &tokens, chunk) {
        d = d.with_help(h);
    }
    d
}

/// Help for the mistakes people make most.
fn hint(text: &str, pos: usize, tokens: &BTreeSet<String>, chunk: &str) -> Option<String> {
    let rest = &text[pos..];
    let before = text[..pos].trim_end();
    if rest.starts_with('=') && tokens.contains(")") && !rest.starts_with("==") {
        return Some("named arguments use `:`, as in `dense(units: 64)`".into());
    }
    if rest.starts_with(':') && tokens.contains("=") {
        return Some("entries use `=`, as in `epochs = 10`".into());
    }
    if rest.starts_with(';') {
        return Some("mlx needs no `;`: entries end at the end of their expression".into());
    }
    if rest.starts_with('\'') {
        return Some("strings use double quotes: \"...\"".into());
    }
    if tokens.contains(",") && rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '"') {
        return Some("separate arguments and list items with `,`".into());
    }
    // `f` at the end of a line, `(...)` at the start of the next: newlines separate entries.
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    if rest.starts_with('(')
        && text[line_start..pos].trim().is_empty()
        && before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ')')
    {
        return Some(
            "a call's `(` goes on the line where the called name ends (`dense(3)`); a line that starts with `(` begins a new entry".into(),
        );
    }
    let first = chunk.trim_start();
    if first.starts_with("model")
        && tokens.contains("(")
        && before.ends_with(|c: char| c.is_alphanumeric())
    {
        return Some("a model declares its input: `model name(x: Float[B, F]) { ... }`".into());
    }
    None
}

fn rule_phrase(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::ident | Rule::path | Rule::module_path => "a name",
        Rule::expr
        | Rule::compare
        | Rule::sum
        | Rule::product
        | Rule::unary
        | Rule::postfix
        | Rule::paren
        | Rule::list
        | Rule::lambda
        | Rule::arg => "an expression",
        Rule::int | Rule::float => "a number",
        Rule::string => "a string",
        Rule::boolean => "`true` or `false`",
        Rule::type_expr => "a type",
        Rule::dim => "a dimension",
        Rule::param_list => "a parameter list `(...)`",
        Rule::param_decl => "a parameter `name: Type`",
        Rule::return_type => "`->`",
        Rule::block => "a block `{ ... }`",
        Rule::args => "`(`",
        Rule::field => "`.`",
        Rule::entry => "an entry `key = value`",
        Rule::assignment => "an assignment `path = values`",
        Rule::feature => "a feature `column: Type = steps`",
        Rule::let_stmt => "`let`",
        Rule::models_block => "a `models { ... }` block",
        Rule::objective_block => "an `objective NAME { ... }` block",
        Rule::param_stmt => "`param`",
        Rule::range => "`in [lo, hi]`",
        Rule::use_item
        | Rule::const_item
        | Rule::dataset_item
        | Rule::model_item
        | Rule::train_item
        | Rule::sweep_item => {
            "a declaration (`use`, `const`, `dataset`, `model`, `train` or `sweep`)"
        }
        Rule::kw_use
        | Rule::kw_const
        | Rule::kw_dataset
        | Rule::kw_model
        | Rule::kw_train
        | Rule::kw_sweep => {
            "a declaration (`use`, `const`, `dataset`, `model`, `train` or `sweep`)"
        }
        Rule::kw_source => "`source`",
        Rule::kw_features => "`features`",
        Rule::kw_target => "`target`",
        Rule::kw_let => "`let`",
        Rule::kw_param => "`param`",
        Rule::kw_grid => "`grid`",
        Rule::kw_random => "`random`",
        Rule::kw_in => "`in`",
        Rule::kw_models => "`models`",
        Rule::kw_objective => "`objective`",
        Rule::EOI => "the end of the file",
        Rule::pipe_op => "`|>`",
        _ => return None,
    })
}

/// Tokens that close or separate: what is usually missing.
fn is_structural(t: &str) -> bool {
    matches!(t, ")" | "]" | "}" | "," | ":" | "=" | "->" | "{")
}

/// Tokens that can begin an expression (covered by "an expression").
fn starts_expression(t: &str) -> bool {
    matches!(t, "\"" | "(" | "[" | "|" | "-" | "true" | "false")
        || t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn is_operator(t: &str) -> bool {
    matches!(
        t,
        "|>" | "+"
            | "-"
            | "*"
            | "/"
            | "@"
            | "<"
            | "<="
            | ">"
            | ">="
            | "=="
            | "!="
            | "."
            | "e"
            | "E"
            | "_"
            | "("
    ) || t.len() == 1 && t.chars().all(|c| c.is_ascii_digit())
        || t.contains("..")
}

fn join_alternatives(items: &BTreeSet<String>) -> String {
    // Put the structural tokens first: they are usually what is missing.
    let mut v: Vec<&String> = items.iter().collect();
    v.sort_by_key(|s| (!s.starts_with('`'), s.len()));
    v.dedup();
    match v.len() {
        0 => String::new(),
        1 => v[0].clone(),
        n => {
            let head: Vec<&str> = v[..n - 1].iter().map(|s| s.as_str()).collect();
            format!("{} or {}", head.join(", "), v[n - 1])
        }
    }
}

fn describe_found(text: &str, pos: usize) -> String {
    let rest = &text[pos..];
    let Some(c) = rest.chars().next() else {
        return "the end of the file".to_string();
    };
    if c.is_ascii_alphabetic() || c == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        return format!("`{word}`");
    }
    if c.is_ascii_digit() {
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
            .collect();
        return format!("the number `{num}`");
    }
    if c == '"' {
        return "a string".to_string();
    }
    if c == '\n' || c == '\r' {
        return "the end of the line".to_string();
    }
    format!("`{c}`")
}

fn found_len(text: &str, pos: usize) -> usize {
    let rest = &text[pos..];
    let Some(c) = rest.chars().next() else {
        return 0;
    };
    if c.is_ascii_alphanumeric() || c == '_' {
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .map(char::len_utf8)
            .sum()
    } else {
        c.len_utf8()
    }
}

fn trailing_ws(text: &str) -> usize {
    text.len() - text.trim_end().len()
}

fn at_item_start(text: &str, pos: usize) -> bool {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..pos].trim().is_empty() && line_start == pos && super::starts_item(&text[pos..])
}

struct Open {
    bracket: char,
    at: usize,
}

/// The innermost bracket opened before `pos` and not closed before it.
fn innermost_unclosed(text: &str, pos: usize) -> Option<Open> {
    let mut stack: Vec<Open> = Vec::new();
    let (mut in_string, mut in_comment, mut escaped) = (false, false, false);
    for (i, c) in text[..pos].char_indices() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_string {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => in_string = false,
                '\n' => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '/' if text[i + 1..].starts_with('/') => in_comment = true,
            '{' | '(' | '[' => stack.push(Open { bracket: c, at: i }),
            '}' | ')' | ']' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

/// What kind of block a `{` at `at` opens, from the words before it.
fn block_kind(text: &str, at: usize) -> &'static str {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let mut start = line_start;
    // A model header may span lines; walk back to the line that starts the item.
    while start > 0 {
        let line = &text[start..];
        if [
            "model", "dataset", "train", "sweep", "features", "grid", "random", "let", "param",
        ]
        .iter()
        .any(|k| line.trim_start().starts_with(k))
        {
            break;
        }
        start = text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
    }
    let head = text[start..at].trim_start();
    for (kw, name) in [
        ("model", "`model`"),
        ("dataset", "`dataset`"),
        ("train", "`train`"),
        ("sweep", "`sweep`"),
        ("features", "`features`"),
        ("grid", "`grid`"),
        ("random", "`random`"),
    ] {
        if head.starts_with(kw) {
            return name;
        }
    }
    if text[line_start..at].contains('|') {
        return "lambda";
    }
    "`{`"
}

/// The start of a string still open at `pos` on its line, if any.
fn open_string_on_line(text: &str, pos: usize) -> Option<usize> {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    let (mut open, mut escaped) = (None, false);
    for (i, c) in text[line_start..line_end].char_indices() {
        let at = line_start + i;
        match (open, c) {
            (None, '/') if text[at + 1..].starts_with('/') => break,
            (None, '"') => open = Some(at),
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(_), '"') if !escaped => open = None,
            _ => {}
        }
        escaped = false;
    }
    open.filter(|o| *o <= pos)
}
