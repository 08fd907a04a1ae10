//! Sweeps: the grid (or the seeded random sample) of points is expanded at check time and the
//! base train is checked at every point, so a bad point fails `mlx check` before any trial.

use super::config::monitor;
use super::hir::SweepPlan;
use super::tables::ENTRY_KEYS;
use super::train::EntryOverride;
use super::value::Val;
use super::{Checker, Frame, ItemRef};
use crate::diagnostics::{Diagnostic, did_you_mean};
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind, SweepEntry};

/// Sweep points: each a list of (path, value) overrides.
type Points = Vec<Vec<(Vec<String>, ast::Expr)>>;

/// One axis of a sweep: a path and the values it takes (as expressions).
struct Axis<'a> {
    path: Vec<String>,
    span: Span,
    values: Vec<&'a ast::Expr>,
}

const SETTINGS: &[&str] = &["base", "objective"];

impl<'a> Checker<'a> {
    pub(crate) fn sweep_plan(&mut self, s: &'a ast::Sweep) -> Option<SweepPlan> {
        let mut base: Option<(&ast::Train, String)> = None;
        let mut objective = None;
        let mut axes: Vec<Axis<'a>> = Vec::new();
        let mut block_span: Option<Span> = None;
        let mut random_points: Option<(Points, Points)> = None;
        let mut ok = true;
        for e in &s.entries {
            match e {
                SweepEntry::Setting(en) => match en.key.name.as_str() {
                    "base" => match en
                        .value
                        .as_name()
                        .map(|id| (id, self.items.get(&id.name).copied()))
                    {
                        Some((id, Some((ItemRef::Train(t), _)))) => {
                            base = Some((t, id.name.clone()))
                        }
                        Some((id, Some((other, _)))) => {
                            self.error(
                                Diagnostic::error(
                                    "mlx::name::kind",
                                    format!(
                                        "`{}` is a {}, but a sweep's base is a train",
                                        id.name,
                                        other.kind()
                                    ),
                                )
                                .with_label(id.span, "not a train"),
                            );
                            ok = false;
                        }
                        Some((id, None)) => {
                            let c = self.item_names("train");
                            self.unknown_name("train", id, &c, None);
                            ok = false;
                        }
                        None => {
                            self.error(
                                Diagnostic::error("mlx::type::mismatch", "`base` names a train")
                                    .with_label(en.value.span, "not a name"),
                            );
                            ok = false;
                        }
                    },
                    "objective" => objective = self.objective(&en.value),
                    other => {
                        let mut d = Diagnostic::error(
                            "mlx::name::unknown",
                            format!("unknown sweep setting `{other}`"),
                        )
                        .with_label(en.key.span, "not a sweep setting");
                        d = d.suggest_or(other, SETTINGS.iter().copied(), "a sweep has `base`, `objective`, and a `grid { ... }` or `random(trials: N) { ... }` block");
                        self.error(d);
                        ok = false;
                    }
                },
                SweepEntry::Grid { assignments, span }
                | SweepEntry::Random {
                    assignments, span, ..
                } => {
                    if let Some(prev) = block_span {
                        self.error(
                            Diagnostic::error(
                                "mlx::sweep::block",
                                "a sweep has one `grid` or `random` block",
                            )
                            .with_label(*span, "second block")
                            .with_secondary(prev, "first block"),
                        );
                        ok = false;
                        continue;
                    }
                    block_span = Some(*span);
                    if let SweepEntry::Random { args, .. } = e {
                        random_points = self.random_points(args, assignments, *span);
                        ok &= random_points.is_some();
                        continue;
                    }
                    for a in assignments {
                        let ExprKind::List(vs) = &a.value.kind else {
                            self.error(
                                Diagnostic::error("mlx::type::mismatch", "a grid axis is a list of values: `optimizer.lr = [1e-3, 1e-2]`")
                                    .with_label(a.value.span, "not a list"),
                            );
                            ok = false;
                            continue;
                        };
                        if vs.is_empty() {
                            self.error(
                                Diagnostic::error(
                                    "mlx::sweep::point",
                                    "a grid axis needs at least one value",
                                )
                                .with_label(a.value.span, "empty"),
                            );
                            ok = false;
                            continue;
                        }
                        let span = match (a.path.first(), a.path.last()) {
                            (Some(f), Some(l)) => f.span.to(l.span),
                            _ => a.span,
                        };
                        let path: Vec<&str> = a.path.iter().map(|i| i.name.as_str()).collect();
                        if let Some(prev) = axes.iter().find(|x| x.path == path) {
                            self.error(
                                Diagnostic::error(
                                    "mlx::name::duplicate",
                                    format!(
                                        "the grid lists `{}` twice (the sweep would run duplicate points)",
                                        path.join(".")
                                    ),
                                )
                                .with_label(span, "listed again here")
                                .with_secondary(prev.span, "first listed here")
                                .with_help("put every value in one list: `optimizer.lr = [0.003, 0.01, 0.1]`"),
                            );
                            ok = false;
                            continue;
                        }
                        axes.push(Axis {
                            span,
                            path: a.path.iter().map(|i| i.name.clone()).collect(),
                            values: vs.iter().collect(),
                        });
                    }
                }
            }
        }
        for a in &axes {
            ok &= self.sweep_path_ok(&a.path, a.span);
        }
        let Some((base_t, base_name)) = base else {
            if ok {
                self.error(
                    Diagnostic::error(
                        "mlx::sweep::base",
                        format!("sweep `{}` has no `base` train", s.name.name),
                    )
                    .with_label(s.name.span, "what should it vary?")
                    .with_help("add `base = my_train`"),
                );
            }
            return None;
        };
        let Some((objective, maximize)) = objective else {
            if ok
                && !s
                    .entries
                    .iter()
                    .any(|e| matches!(e, SweepEntry::Setting(en) if en.key.name == "objective"))
            {
                self.error(
                    Diagnostic::error(
                        "mlx::sweep::objective",
                        format!("sweep `{}` has no `objective`", s.name.name),
                    )
                    .with_label(s.name.span, "how are trials compared?")
                    .with_help("add `objective = maximize(val.accuracy)` or `minimize(val.loss)`"),
                );
            }
            return None;
        };
        if !ok {
            return None;
        }
        // Expand the points: the grid's cartesian product (first axis slowest), or the sample.
        let (owned, probes): (Points, Points) = match random_points {
            Some(p) => p,
            None => (
                {
                    let mut pts: Points = vec![Vec::new()];
                    for a in &axes {
                        let mut next = Vec::new();
                        for p in &pts {
                            for v in &a.values {
                                let mut q = p.clone();
                                q.push((a.path.clone(), (*v).clone()));
                                next.push(q);
                            }
                        }
                        pts = next;
                    }
                    pts
                },
                Vec::new(),
            ),
        };
        let total = owned.len();
        let mut trains = Vec::new();
        let mut points = Vec::new();
        for (i, p) in owned.iter().enumerate() {
            let context = format!("sweep point {} of {total}: {}", i + 1, point_text(p));
            match self.point_plan(base_t, &base_name, p, s.name.span, context) {
                Some(plan) => {
                    trains.push(plan);
                    points.push(
                        p.iter()
                            .map(|(k, v)| (k.join("."), crate::syntax::print::expr(v)))
                            .collect(),
                    );
                }
                None => ok = false,
            }
        }
        // The ends of the random axes' ranges: checked only when every trial point passed,
        // so a range's mistake is reported once, at its distribution.
        if ok {
            for p in &probes {
                let context = format!(
                    "a value the random block can draw (not among this seed's trials): {}",
                    point_text(p)
                );
                if self
                    .point_plan(base_t, &base_name, p, s.name.span, context)
                    .is_none()
                {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            return None;
        }
        if let Some(t) = trains.first()
            && let Some(name) = &objective.objective
        {
            let names: Vec<String> = t
                .multi
                .as_ref()
                .map(|m| m.objectives.iter().map(|o| o.name.clone()).collect())
                .unwrap_or_default();
            if !names.contains(name) {
                // The figure's own span: the argument of `maximize(...)`.
                let span = s.entries.iter().find_map(|e| match e {
                    SweepEntry::Setting(en) if en.key.name == "objective" => match &en.value.kind {
                        ExprKind::Call { args, .. } if args.len() == 1 => Some(args[0].value.span),
                        _ => Some(en.value.span),
                    },
                    _ => None,
                });
                if t.multi.is_none() {
                    // Not a train with objectives: the figure is simply unknown.
                    let path = [objective.split.clone(), name.clone()];
                    if let Err((msg, help)) = monitor(&path) {
                        self.error(
                            Diagnostic::error("mlx::name::unknown", msg)
                                .with_label(span.unwrap_or(s.name.span), "unknown figure")
                                .with_help(help),
                        );
                    }
                    return None;
                }
                let mut d = Diagnostic::error(
                    "mlx::sweep::objective",
                    format!(
                        "`{}` is neither a figure mlx reports nor an objective of train `{base_name}`",
                        objective.name()
                    ),
                )
                .with_label(span.unwrap_or(s.name.span), "unknown figure");
                d = match did_you_mean(name, names.iter().map(String::as_str)) {
                    Some(x) => d.with_help(format!("did you mean `{}.{x}`?", objective.split)),
                    None => d.with_help("write `val.loss`, `val.<metric>` or `val.<objective>`"),
                };
                self.error(d);
                return None;
            }
        }
        if let Some(t) = trains.first() {
            let has_metric = objective.metric.is_none_or(|m| t.metrics.contains(&m));
            if !has_metric {
                let span = s.entries.iter().find_map(|e| match e {
                    SweepEntry::Setting(en) if en.key.name == "objective" => Some(en.value.span),
                    _ => None,
                });
                self.error(
                    Diagnostic::error(
                        "mlx::sweep::objective",
                        format!(
                            "the objective `{}` is not among the base train's metrics",
                            objective.name()
                        ),
                    )
                    .with_label(span.unwrap_or(s.name.span), "not computed by the trials")
                    .with_help(format!("add it to `metrics` of train `{base_name}`")),
                );
                return None;
            }
        }
        Some(SweepPlan {
            name: s.name.name.clone(),
            base: base_name,
            objective,
            maximize,
            points,
            trains,
        })
    }

    /// The base train checked at one point (its overrides applied), errors labelled with
    /// `context`; `None` when the point has errors.
    fn point_plan(
        &mut self,
        base: &'a ast::Train,
        base_name: &str,
        p: &[(Vec<String>, ast::Expr)],
        fallback: Span,
        context: String,
    ) -> Option<super::hir::TrainPlan> {
        let overrides: Vec<EntryOverride<'_>> = p
            .iter()
            .map(|(k, v)| EntryOverride {
                path: k.clone(),
                value: v,
                span: v.span,
            })
            .collect();
        self.frames.push(Frame {
            call_span: p.first().map_or(fallback, |(_, v)| v.span),
            model: base_name.to_string(),
            context: Some(context),
            note: None,
        });
        let before = self.error_count;
        let plan = self.train_plan(base, &overrides);
        self.frames.pop();
        if self.error_count > before {
            return None;
        }
        plan
    }

    fn sweep_path_ok(&mut self, path: &[String], span: Span) -> bool {
        let Some(head) = path.first() else {
            return false;
        };
        if ENTRY_KEYS.contains(&head.as_str()) && path.len() <= 2 {
            return true;
        }
        // Into a train with objectives: `models.g.latent`, `objective.generate.optimizer.lr`
        // (the train checks that the model or objective exists).
        if (head == "models" && (2..=3).contains(&path.len()))
            || (head == "objective" && (3..=4).contains(&path.len()))
            || (head == "samples" && path.len() == 1)
        {
            return true;
        }
        let mut d = Diagnostic::error(
            "mlx::sweep::path",
            format!(
                "`{}` is not a train setting a sweep can vary",
                path.join(".")
            ),
        )
        .with_label(span, "unknown path");
        if let Some(s) = did_you_mean(head, ENTRY_KEYS.iter().copied()) {
            d = d.with_help(format!("did you mean `{s}`?"));
        } else {
            d = d.with_help("vary a train entry (`epochs`) or one argument of it (`optimizer.lr`, `model.hidden`)");
        }
        self.error(d);
        false
    }

    fn objective(&mut self, e: &ast::Expr) -> Option<(super::hir::Monitor, bool)> {
        let bad = |this: &mut Self| {
            this.error(
                Diagnostic::error(
                    "mlx::sweep::objective",
                    "the objective is `maximize(FIGURE)` or `minimize(FIGURE)`",
                )
                .with_label(e.span, "not an objective")
                .with_help("e.g. `objective = maximize(val.accuracy)`"),
            );
            None
        };
        let ExprKind::Call { callee, args } = &e.kind else {
            return bad(self);
        };
        let Some(dir) = callee.as_name() else {
            return bad(self);
        };
        let maximize = match dir.name.as_str() {
            "maximize" => true,
            "minimize" => false,
            other => {
                let mut d = Diagnostic::error(
                    "mlx::sweep::objective",
                    format!("unknown direction `{other}`"),
                )
                .with_label(dir.span, "maximize or minimize");
                d = d.suggest(other, ["maximize", "minimize"]);
                self.error(d);
                return None;
            }
        };
        let [arg] = args.as_slice() else {
            return bad(self);
        };
        let Some(path) = arg.value.as_path() else {
            return bad(self);
        };
        let path: Vec<String> = path.iter().map(|i| i.name.clone()).collect();
        match monitor(&path) {
            Ok(m) => Some((m, maximize)),
            // Perhaps an objective of the base train: checked once the trials are planned.
            Err(_) if path.len() == 2 && (path[0] == "val" || path[0] == "train") => Some((
                super::hir::Monitor {
                    split: path[0].clone(),
                    metric: None,
                    objective: Some(path[1].clone()),
                },
                maximize,
            )),
            Err((msg, help)) => {
                self.error(
                    Diagnostic::error("mlx::name::unknown", msg)
                        .with_label(arg.value.span, "unknown figure")
                        .with_help(help),
                );
                None
            }
        }
    }

    /// Sample `trials` points from the distributions, seeded.
    fn random_points(
        &mut self,
        args: &'a [ast::Arg],
        assignments: &'a [ast::Assignment],
        span: Span,
    ) -> Option<(Points, Points)> {
        let mut trials = None;
        let mut seed = 0u64;
        for a in args {
            let key = a
                .name
                .as_ref()
                .map(|n| n.name.as_str())
                .unwrap_or(if trials.is_none() { "trials" } else { "seed" });
            let v = self.scalar_expr(&a.value);
            let n = match &v {
                Val::Int(d) => d.as_const(),
                _ => None,
            };
            match (key, n) {
                ("trials", Some(n)) if n >= 1 => trials = Some(n as usize),
                ("seed", Some(n)) if n >= 0 => seed = n as u64,
                ("trials" | "seed", _) => {
                    self.error(
                        Diagnostic::error(
                            "mlx::value::range",
                            format!(
                                "`{key}` must be a whole number{}",
                                if key == "trials" {
                                    " of at least 1"
                                } else {
                                    " of at least 0"
                                }
                            ),
                        )
                        .with_label(a.value.span, "out of range"),
                    );
                    return None;
                }
                (other, _) => {
                    let mut d = Diagnostic::error(
                        "mlx::arg::unknown",
                        format!("`random` has no argument `{other}`"),
                    )
                    .with_label(a.span, "unknown argument");
                    d = d.suggest(other, ["trials", "seed"]);
                    self.error(d);
                    return None;
                }
            }
        }
        let Some(trials) = trials else {
            self.error(
                Diagnostic::error("mlx::arg::missing", "`random` needs `trials`")
                    .with_label(span, "how many points?")
                    .with_help("write `random(trials: 20, seed: 1) { ... }`"),
            );
            return None;
        };
        let mut dists: Vec<(Vec<String>, Dist<'a>, Span)> = Vec::new();
        let mut seen: Vec<(Vec<String>, Span)> = Vec::new();
        for a in assignments {
            let path: Vec<String> = a.path.iter().map(|i| i.name.clone()).collect();
            let pspan = match (a.path.first(), a.path.last()) {
                (Some(f), Some(l)) => f.span.to(l.span),
                _ => a.span,
            };
            if let Some((_, prev)) = seen.iter().find(|(p, _)| *p == path) {
                self.error(
                    Diagnostic::error(
                        "mlx::name::duplicate",
                        format!(
                            "the random block draws `{}` twice (the second draw would replace the first)",
                            path.join(".")
                        ),
                    )
                    .with_label(pspan, "drawn again here")
                    .with_secondary(*prev, "first drawn here")
                    .with_help("give each setting one distribution"),
                );
                return None;
            }
            seen.push((path.clone(), pspan));
            if !self.sweep_path_ok(&path, pspan) {
                return None;
            }
            dists.push((path, self.distribution(&a.value)?, a.value.span));
        }
        let mut rng = crate::rng::Rng::new(seed, "sweep");
        let mut out = Vec::new();
        for _ in 0..trials {
            let mut p = Vec::new();
            for (path, d, s) in &dists {
                p.push((path.clone(), d.sample(&mut rng, *s)));
            }
            out.push(p);
        }
        // A repeated point trains the same model again (and, run by a scheduler, shares its
        // trial directory with the first): say so.
        let repeats: Vec<(usize, usize)> = (0..out.len())
            .filter_map(|k| (0..k).find(|j| out[*j] == out[k]).map(|j| (k + 1, j + 1)))
            .collect();
        if !repeats.is_empty() {
            let shown: Vec<String> = repeats
                .iter()
                .take(4)
                .map(|(k, j)| format!("trial {k} is trial {j}"))
                .collect();
            self.error(
                Diagnostic::warning(
                    "mlx::sweep::repeat",
                    format!(
                        "{} of the {trials} random trials draw a point already drawn ({}{}): each repeat trains the same model again",
                        repeats.len(),
                        shown.join(", "),
                        if repeats.len() > shown.len() { ", ..." } else { "" }
                    ),
                )
                .with_label(span, "repeats points")
                .with_help("draw fewer trials, give the choices more values, or list the points in a `grid { ... }`"),
            );
        }
        // Every value an axis can take must work, not only those this seed draws: points with
        // one axis at an end of its range (or at each choice), the others as in the first
        // trial. They are checked, never run.
        let mut probes = Vec::new();
        if let Some(first) = out.first() {
            for (i, (_, d, s)) in dists.iter().enumerate() {
                for v in d.ends(*s) {
                    let mut p = first.clone();
                    p[i].1 = v;
                    if !out.contains(&p) && !probes.contains(&p) {
                        probes.push(p);
                    }
                }
            }
        }
        Some((out, probes))
    }

    fn distribution(&mut self, e: &'a ast::Expr) -> Option<Dist<'a>> {
        let bad = |this: &mut Self| {
            this.error(
                Diagnostic::error("mlx::sweep::distribution", "a random axis is `choice([...])`, `uniform(lo, hi)`, `log_uniform(lo, hi)` or `int_range(lo, hi)`")
                    .with_label(e.span, "not a distribution"),
            );
            None
        };
        let ExprKind::Call { callee, args } = &e.kind else {
            return bad(self);
        };
        let Some(name) = callee.as_name() else {
            return bad(self);
        };
        let nums = |this: &mut Self| -> Option<(f64, f64)> {
            if args.len() != 2 {
                return None;
            }
            let lo = this.scalar_expr(&args[0].value).as_f64()?;
            let hi = this.scalar_expr(&args[1].value).as_f64()?;
            Some((lo, hi))
        };
        let d = match name.name.as_str() {
            "choice" => match args.first().map(|a| &a.value.kind) {
                Some(ExprKind::List(v)) if args.len() == 1 && !v.is_empty() => {
                    Dist::Choice(v.iter().collect())
                }
                _ => return bad(self),
            },
            "uniform" | "log_uniform" | "int_range" => {
                let Some((lo, hi)) = nums(self) else {
                    return bad(self);
                };
                if lo > hi || (name.name == "log_uniform" && lo <= 0.0) {
                    self.error(
                        Diagnostic::error(
                            "mlx::value::range",
                            format!(
                                "`{}` needs {}lo <= hi",
                                name.name,
                                if name.name == "log_uniform" {
                                    "0 < "
                                } else {
                                    ""
                                }
                            ),
                        )
                        .with_label(e.span, "empty or invalid range"),
                    );
                    return None;
                }
                match name.name.as_str() {
                    "uniform" => Dist::Uniform(lo, hi),
                    "log_uniform" => Dist::LogUniform(lo, hi),
                    _ => Dist::IntRange(lo as i64, hi as i64),
                }
            }
            other => {
                let mut d = Diagnostic::error(
                    "mlx::sweep::distribution",
                    format!("unknown distribution `{other}`"),
                )
                .with_label(name.span, "not a distribution");
                d = d.suggest(other, ["choice", "uniform", "log_uniform", "int_range"]);
                self.error(d);
                return None;
            }
        };
        Some(d)
    }
}

enum Dist<'a> {
    Choice(Vec<&'a ast::Expr>),
    Uniform(f64, f64),
    LogUniform(f64, f64),
    IntRange(i64, i64),
}

impl Dist<'_> {
    /// The values that bound what the distribution draws: both ends of a range, every choice.
    fn ends(&self, span: Span) -> Vec<ast::Expr> {
        let kinds = match self {
            Dist::Choice(v) => return v.iter().map(|e| (*e).clone()).collect(),
            Dist::Uniform(lo, hi) | Dist::LogUniform(lo, hi) => {
                vec![ExprKind::Float(*lo), ExprKind::Float(*hi)]
            }
            Dist::IntRange(lo, hi) => vec![ExprKind::Int(*lo), ExprKind::Int(*hi)],
        };
        kinds
            .into_iter()
            .map(|kind| ast::Expr { kind, span })
            .collect()
    }

    fn sample(&self, rng: &mut crate::rng::Rng, span: Span) -> ast::Expr {
        let kind = match self {
            Dist::Choice(v) => return v[rng.below(v.len() as u64) as usize].clone(),
            Dist::Uniform(lo, hi) => ExprKind::Float(round_sig(lo + (hi - lo) * rng.next_f64())),
            Dist::LogUniform(lo, hi) => ExprKind::Float(round_sig(
                (lo.ln() + (hi.ln() - lo.ln()) * rng.next_f64()).exp(),
            )),
            Dist::IntRange(lo, hi) => ExprKind::Int(lo + rng.below((hi - lo + 1) as u64) as i64),
        };
        ast::Expr { kind, span }
    }
}

/// `a.b = v, c = w`: a point as its context labels show it.
fn point_text(p: &[(Vec<String>, ast::Expr)]) -> String {
    p.iter()
        .map(|(k, v)| format!("{} = {}", k.join("."), crate::syntax::print::expr(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Six significant digits: sampled values print and re-read exactly.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 6 - x.abs().log10().ceil() as i32;
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
