//! The driver: runs the phases in order and does their file I/O. Loads a file and everything
//! it `use`s (detecting cycles), parses `--set` values, reads data schemas (cached), and stops
//! after a phase that produced errors.

use crate::check::{self, Override, SchemaSource, hir};
use crate::data::schema::{self, Schema, SchemaError};
use crate::diagnostics::{Diagnostic, has_errors};
use crate::source::{FileId, Origin, SourceMap, Span};
use crate::syntax::{self, ast};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything loaded for one root file.
pub struct Loaded {
    pub sources: SourceMap,
    pub modules: Vec<ast::Module>,
    pub root: FileId,
    pub diags: Vec<Diagnostic>,
}

/// The outcome of `mlx check`: the sources (for rendering), the program if it checked, and
/// every diagnostic.
pub struct Checked {
    pub sources: SourceMap,
    pub modules: Vec<ast::Module>,
    pub root: FileId,
    pub program: Option<hir::Program>,
    pub diags: Vec<Diagnostic>,
    pub overrides: Vec<Override>,
    /// Every data schema read while checking, by `loader_key` (a run records its own).
    pub schemas: BTreeMap<String, Arc<Schema>>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.program.is_some() && !has_errors(&self.diags)
    }
}

/// Load `path` and, transitively, the files and stdlib modules it uses.
pub fn load(path: &Path) -> Loaded {
    let mut l = Loaded {
        sources: SourceMap::new(),
        modules: Vec::new(),
        root: FileId(0),
        diags: Vec::new(),
    };
    let text = match crate::data::csv::read_regular_text(path) {
        Ok(t) => t,
        Err(e) => {
            l.diags.push(
                Diagnostic::error(
                    "mlx::file::unreadable",
                    format!(
                        "cannot read `{}`: {}",
                        path.display(),
                        crate::data::csv::io_message(&e)
                    ),
                )
                .with_help(if path.is_dir() {
                    "give the path of an `.mlx` file in it"
                } else if path.exists() {
                    "check the file's permissions and that it is UTF-8 text"
                } else {
                    "check the path"
                }),
            );
            return l;
        }
    };
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let root = l
        .sources
        .add(Origin::Disk(display_path(path, &abs)), without_bom(text));
    l.root = root;
    let mut stack = vec![abs];
    load_file(&mut l, root, &mut stack);
    l
}

/// Keep the path as the user wrote it for messages, but resolve imports from the real one.
fn display_path(given: &Path, _abs: &Path) -> PathBuf {
    given.to_path_buf()
}

fn load_file(l: &mut Loaded, id: FileId, stack: &mut Vec<PathBuf>) {
    let text = l.sources.get(id).text.clone();
    let (module, diags) = syntax::parse(id, &text);
    l.diags.extend(diags);
    let uses: Vec<ast::Use> = module
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Use(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    let dir = l.sources.get(id).dir().map(Path::to_path_buf);
    l.modules.push(module);
    for u in uses {
        match &u.target {
            ast::UseTarget::Module(path) => {
                let name: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
                let name = name.join(".");
                let origin = Origin::Stdlib(name.clone());
                if l.sources.find(&origin).is_some() {
                    continue;
                }
                match crate::stdlib::source(&name) {
                    Some(text) => {
                        let sid = l.sources.add(origin, text.to_string());
                        load_file(l, sid, stack);
                    }
                    None => {
                        let mods: Vec<&str> =
                            crate::stdlib::MODULES.iter().map(|(m, _)| *m).collect();
                        let mut d = Diagnostic::error(
                            "mlx::use::not_found",
                            format!("there is no module `{name}`"),
                        )
                        .with_label(u.target_span, "unknown module");
                        d = d.suggest_or(&name, mods.iter().copied(), format!(
                                "the standard modules are {}; a local file is imported with `use \"file.mlx\"`",
                                mods.join(", ")
                            ));
                        l.diags.push(d);
                    }
                }
            }
            ast::UseTarget::File(rel) => {
                let given = match &dir {
                    Some(d) => d.join(rel),
                    None => PathBuf::from(rel),
                };
                let abs = std::fs::canonicalize(&given).unwrap_or_else(|_| given.clone());
                if let Some(i) = stack.iter().position(|p| *p == abs) {
                    let chain: Vec<String> = stack[i..]
                        .iter()
                        .chain(std::iter::once(&abs))
                        .map(|p| {
                            p.file_name().map_or_else(
                                || p.display().to_string(),
                                |f| f.to_string_lossy().into_owned(),
                            )
                        })
                        .collect();
                    l.diags.push(
                        Diagnostic::error(
                            "mlx::use::cycle",
                            format!("import cycle: {}", chain.join(" → ")),
                        )
                        .with_label(u.span, "this import closes the cycle")
                        .with_help(
                            "move what both files need into a third file that imports neither",
                        ),
                    );
                    continue;
                }
                if l.sources.find(&Origin::Disk(given.clone())).is_some()
                    || l.sources.iter().any(|(_, f)| matches!(&f.origin, Origin::Disk(p) if std::fs::canonicalize(p).ok().as_ref() == Some(&abs)))
                {
                    continue;
                }
                match crate::data::csv::read_regular_text(&given) {
                    Ok(text) => {
                        let fid = l
                            .sources
                            .add(Origin::Disk(given.clone()), without_bom(text));
                        stack.push(abs);
                        load_file(l, fid, stack);
                        stack.pop();
                    }
                    Err(e) => {
                        l.diags.push(
                            Diagnostic::error(
                                "mlx::use::not_found",
                                format!(
                                    "cannot import `{rel}`: {}",
                                    crate::data::csv::io_message(&e)
                                ),
                            )
                            .with_label(u.target_span, format!("looked for {}", given.display()))
                            .with_help("imported paths are relative to the importing file"),
                        );
                    }
                }
            }
        }
    }
}

/// Parse `--set key=value` arguments into overrides (their values live in virtual files).
pub fn parse_overrides(
    sources: &mut SourceMap,
    sets: &[String],
) -> (Vec<Override>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            diags.push(
                Diagnostic::error(
                    "mlx::set::syntax",
                    format!("`--set {s}` needs the form key=value"),
                )
                .with_help("e.g. `--set epochs=1` or `--set optimizer.lr=0.003`"),
            );
            continue;
        };
        let text = format!("{}={}", k.trim(), v.trim());
        let file = sources.add(Origin::Virtual(format!("--set {}", k.trim())), text.clone());
        let value_start = k.trim().len() + 1;
        let path: Vec<String> = k.trim().split('.').map(str::to_string).collect();
        if path
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            diags.push(
                Diagnostic::error(
                    "mlx::set::syntax",
                    format!("`{}` is not a setting path", k.trim()),
                )
                .with_label(
                    Span::new(file, 0, k.trim().len()),
                    "expected names joined by `.`",
                ),
            );
            continue;
        }
        // Parse the value alone, then move its spans to where it sits in the virtual file.
        match syntax::parse_expr(file, &text[value_start..]) {
            Ok(mut e) => {
                shift(&mut e, value_start as u32);
                out.push(Override {
                    path,
                    value: e,
                    span: Span::new(file, 0, text.len()),
                });
            }
            Err(mut d) => {
                for l in &mut d.labels {
                    l.span.start += value_start as u32;
                    l.span.end += value_start as u32;
                }
                diags.push(d);
            }
        }
    }
    (out, diags)
}

fn shift(e: &mut ast::Expr, by: u32) {
    e.span.start += by;
    e.span.end += by;
    match &mut e.kind {
        ast::ExprKind::Field(b, i) => {
            shift(b, by);
            i.span.start += by;
            i.span.end += by;
        }
        ast::ExprKind::Name(i) => {
            i.span.start += by;
            i.span.end += by;
        }
        ast::ExprKind::List(xs) => xs.iter_mut().for_each(|x| shift(x, by)),
        ast::ExprKind::Call { callee, args } => {
            shift(callee, by);
            for a in args {
                a.span.start += by;
                a.span.end += by;
                if let Some(n) = &mut a.name {
                    n.span.start += by;
                    n.span.end += by;
                }
                shift(&mut a.value, by);
            }
        }
        ast::ExprKind::Binary { lhs, rhs, .. } | ast::ExprKind::Pipe { lhs, rhs } => {
            shift(lhs, by);
            shift(rhs, by);
        }
        ast::ExprKind::Neg(x) => shift(x, by),
        _ => {}
    }
}

/// Reads schemas from disk, once per source.
#[derive(Default)]
pub struct DiskSchemas {
    cache: HashMap<String, Result<Arc<Schema>, SchemaError>>,
}

impl SchemaSource for DiskSchemas {
    fn schema(&mut self, loader: &hir::Loader) -> Result<Arc<Schema>, SchemaError> {
        self.cache
            .entry(loader_key(loader))
            .or_insert_with(|| schema::read(loader).map(Arc::new))
            .clone()
    }

    fn memory_limit(&mut self) -> Option<u64> {
        memory_limit()
    }
}

/// The memory a train may use: `MLX_MEMORY_LIMIT` (bytes) if set, else the machine's total
/// memory (`MemTotal` in `/proc/meminfo`), else no limit (trains are only estimated).
pub fn memory_limit() -> Option<u64> {
    if let Some(v) = std::env::var_os("MLX_MEMORY_LIMIT") {
        return v.to_str().and_then(|v| v.trim().parse().ok());
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// A data source's identity: its loader (format, absolute paths, options) as JSON. Paths are
/// made absolute (against the working directory, without touching the disk), so a run started
/// as `mlx run examples/x.mlx` and its re-check from the run's `spec.mlx` (which names the
/// files by absolute path) agree on each source.
pub fn loader_key(loader: &hir::Loader) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let loader = match loader {
        hir::Loader::Csv { path, missing, sep } => hir::Loader::Csv {
            path: abs(path),
            missing: missing.clone(),
            sep: *sep,
        },
        hir::Loader::Idx { images, labels } => hir::Loader::Idx {
            images: abs(images),
            labels: labels.as_deref().map(abs),
        },
        hir::Loader::Parquet { path } => hir::Loader::Parquet { path: abs(path) },
        hir::Loader::Sql { url, query } => hir::Loader::Sql {
            url: match crate::data::sources::sqlite_path(url) {
                Some(p) => format!("sqlite:{}", abs(Path::new(p)).display()),
                None => url.clone(),
            },
            query: query.clone(),
        },
    };
    serde_json::to_string(&loader).unwrap_or_else(|_| format!("{loader:?}"))
}

/// Schemas recorded by a run, then the disk for any other source.
pub struct RecordedSchemas {
    pub recorded: BTreeMap<String, Arc<Schema>>,
    pub disk: DiskSchemas,
}

impl SchemaSource for RecordedSchemas {
    fn schema(&mut self, loader: &hir::Loader) -> Result<Arc<Schema>, SchemaError> {
        match self.recorded.get(&loader_key(loader)) {
            Some(s) => Ok(s.clone()),
            None => self.disk.schema(loader),
        }
    }

    fn memory_limit(&mut self) -> Option<u64> {
        self.disk.memory_limit()
    }
}

/// `mlx check`: load, parse, check.
pub fn check_file(path: &Path, sets: &[String]) -> Checked {
    let mut disk = DiskSchemas::default();
    let mut c = check_file_with(path, sets, &mut disk);
    c.schemas = disk
        .cache
        .into_iter()
        .filter_map(|(k, v)| v.ok().map(|s| (k, s)))
        .collect();
    c
}

/// The stack parsing and checking run on: the checker recurses once per level of an
/// expression, and `syntax::MAX_EXPR_DEPTH` levels (a 20,000-stage pipeline) need more than a
/// thread's default. Only the pages touched are ever committed.
pub const CHECK_STACK: usize = 1 << 30;

/// Run `f` on a thread with a `CHECK_STACK` stack (a panic is passed on to the caller).
pub fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("mlx-check".into())
            .stack_size(CHECK_STACK)
            .spawn_scoped(s, f);
        match handle {
            Ok(h) => match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            },
            Err(e) => panic!("cannot start the checking thread: {e}"),
        }
    })
}

/// `check_file` with a schema source of the caller's (a cache shared across many checks).
/// Runs on its own thread with a large stack (`on_big_stack`).
pub fn check_file_with(
    path: &Path,
    sets: &[String],
    schemas: &mut (dyn SchemaSource + Send),
) -> Checked {
    on_big_stack(|| check_file_here(path, sets, schemas))
}

fn check_file_here(
    path: &Path,
    sets: &[String],
    schemas: &mut (dyn SchemaSource + Send),
) -> Checked {
    let Loaded {
        mut sources,
        modules,
        root,
        mut diags,
    } = load(path);
    let (overrides, set_diags) = parse_overrides(&mut sources, sets);
    diags.extend(set_diags);
    if modules.is_empty() {
        return Checked {
            sources,
            modules,
            root,
            program: None,
            diags,
            overrides,
            schemas: BTreeMap::new(),
        };
    }
    let (program, check_diags) = {
        let input = check::Input {
            sources: &sources,
            modules: &modules,
            root,
            overrides: &overrides,
        };
        check::check(&input, schemas)
    };
    diags.extend(check_diags);
    let ok = !has_errors(&diags);
    Checked {
        sources,
        modules,
        root,
        program: ok.then_some(program),
        diags,
        overrides,
        schemas: BTreeMap::new(),
    }
}

/// What `instantiate_file` gives.
pub type Instantiated = (
    SourceMap,
    Option<(hir::Program, hir::InstanceId)>,
    Vec<Diagnostic>,
);

/// Load and check `path`, then apply its model `name` to an input of `shape` (see
/// `check::instantiate`). Runs on a large stack, as `check_file_with` does.
pub fn instantiate_file(path: &Path, name: &str, shape: &[usize]) -> Instantiated {
    on_big_stack(|| instantiate_file_here(path, name, shape))
}

fn instantiate_file_here(path: &Path, name: &str, shape: &[usize]) -> Instantiated {
    let Loaded {
        sources,
        modules,
        root,
        mut diags,
    } = load(path);
    if has_errors(&diags) {
        return (sources, None, diags);
    }
    let mut schemas = DiskSchemas::default();
    let (program, inst, more) = {
        let input = check::Input {
            sources: &sources,
            modules: &modules,
            root,
            overrides: &[],
        };
        check::instantiate(&input, &mut schemas, name, shape)
    };
    diags.extend(more);
    let ok = !has_errors(&diags);
    (sources, inst.filter(|_| ok).map(|i| (program, i)), diags)
}

/// A source file's text without the UTF-8 byte-order mark some editors write first: it is
/// not part of the program (spans count from after it).
fn without_bom(text: String) -> String {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    }
}
