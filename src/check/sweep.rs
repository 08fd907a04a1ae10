//! Sweeps: the grid (or the seeded random sample) of points is expanded at check time and the
//! base train is checked at every point, so a bad point fails `mlx check` before any trial.

use super::config::monitor;
use super::error::Unknown;
use super::error::objective::Error;
use super::hir::{Monitor, SweepPlan, TrainPlan};
use super::tables::ENTRY_KEYS;
use super::train::EntryOverride;
use super::value::Val;
use super::{Checker, Frame, ItemRef};
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind, SweepEntry};

/// Sweep points: each a list of (path, value) overrides.
type Points = Vec<Vec<(Vec<String>, ast::Expr)>>;

/// A point as its plan records it: each setting's path and value as text.
type PointText = Vec<(String, String)>;

/// One axis of a sweep: a path and the values it takes (as expressions).
struct Axis<'a> {
    path: Vec<String>,
    span: Span,
    values: Vec<&'a ast::Expr>,
}

const SETTINGS: &[&str] = &["base", "objective"];

impl<'a> Checker<'a> {
    pub(crate) fn sweep_plan(&mut self, s: &'a ast::Sweep) -> Option<SweepPlan> {
        let SweepSettings {
            base,
            objective,
            axes,
            random_points,
            mut ok,
        } = self.sweep_settings(s);
        for a in &axes {
            ok &= self.sweep_path_ok(&a.path, a.span);
        }
        let Some((base_t, base_name)) = base else {
            if ok {
                self.fail(Error::SweepBaseMissing {
                    sweep: s.name.name.clone(),
                    span: s.name.span,
                });
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
                self.fail(Error::SweepObjectiveMissing {
                    sweep: s.name.name.clone(),
                    span: s.name.span,
                });
            }
            return None;
        };
        if !ok {
            return None;
        }
        // Expand the points: the grid's cartesian product (first axis slowest), or the sample.
        let (owned, probes) = random_points.unwrap_or_else(|| (grid_points(&axes), Vec::new()));
        let (trains, points) =
            self.sweep_trials(base_t, &base_name, s.name.span, &owned, &probes)?;
        if !self.sweep_objective_known(s, &trains, &objective, &base_name) {
            return None;
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

    /// A sweep's settings and its `grid` or `random` block, each checked.
    fn sweep_settings(&mut self, s: &'a ast::Sweep) -> SweepSettings<'a> {
        let mut out = SweepSettings {
            base: None,
            objective: None,
            axes: Vec::new(),
            random_points: None,
            ok: true,
        };
        let mut block_span: Option<Span> = None;
        for e in &s.entries {
            match e {
                SweepEntry::Setting(en) => match en.key.name.as_str() {
                    "base" => {
                        if let Some(b) = self.sweep_base(en, &mut out.ok) {
                            out.base = Some(b);
                        }
                    }
                    "objective" => out.objective = self.objective(&en.value),
                    other => {
                        self.fail(Unknown::new(
                            "mlx::name::unknown",
                            format!("unknown sweep setting `{other}`"),
                            en.key.span,
                            "not a sweep setting",
                            other,
                            SETTINGS.iter().copied(),
                        ).otherwise("a sweep has `base`, `objective`, and a `grid { ... }` or `random(trials: N) { ... }` block"));
                        out.ok = false;
                    }
                },
                SweepEntry::Grid { assignments, span }
                | SweepEntry::Random {
                    assignments, span, ..
                } => {
                    if let Some(prev) = block_span {
                        self.fail(Error::SweepBlockTwice {
                            span: *span,
                            first: prev,
                        });
                        out.ok = false;
                        continue;
                    }
                    block_span = Some(*span);
                    if let SweepEntry::Random { args, .. } = e {
                        out.random_points = self.random_points(args, assignments, *span);
                        out.ok &= out.random_points.is_some();
                        continue;
                    }
                    out.ok &= self.grid_axes(assignments, &mut out.axes);
                }
            }
        }
        out
    }

    /// `base = NAME`: the train and its name; `None` (reported, `ok` cleared) when it names
    /// no train.
    fn sweep_base(&mut self, en: &ast::Entry, ok: &mut bool) -> Option<(&'a ast::Train, String)> {
        let Some(id) = en.value.as_name() else {
            self.fail(Error::BaseNotName {
                span: en.value.span,
            });
            *ok = false;
            return None;
        };
        match self.items.get(&id.name).copied() {
            Some((ItemRef::Train(t), _)) => Some((t, id.name.clone())),
            Some((other, _)) => {
                self.fail(Error::BaseNotTrain {
                    name: id.name.clone(),
                    kind: other.kind(),
                    span: id.span,
                });
                *ok = false;
                None
            }
            None => {
                let c = self.item_names("train");
                self.unknown_name("train", id, &c, None);
                *ok = false;
                None
            }
        }
    }

    /// A grid's axes added to `axes`; whether each is a non-empty list of a new setting.
    fn grid_axes(&mut self, assignments: &'a [ast::Assignment], axes: &mut Vec<Axis<'a>>) -> bool {
        let mut ok = true;
        for a in assignments {
            let ExprKind::List(vs) = &a.value.kind else {
                self.fail(Error::GridAxisNotList { span: a.value.span });
                ok = false;
                continue;
            };
            if vs.is_empty() {
                self.fail(Error::GridAxisEmpty { span: a.value.span });
                ok = false;
                continue;
            }
            let span = path_span(a);
            let path: Vec<&str> = a.path.iter().map(|i| i.name.as_str()).collect();
            if let Some(prev) = axes.iter().find(|x| x.path == path) {
                self.fail(Error::GridAxisTwice {
                    path: path.join("."),
                    span,
                    first: prev.span,
                });
                ok = false;
                continue;
            }
            axes.push(Axis {
                span,
                path: a.path.iter().map(|i| i.name.clone()).collect(),
                values: vs.iter().collect(),
            });
        }
        ok
    }

    /// The base train planned at every point, with each point as text; then the random
    /// block's probes checked (not run). `None` when a point has errors.
    fn sweep_trials(
        &mut self,
        base: &'a ast::Train,
        base_name: &str,
        fallback: Span,
        owned: &Points,
        probes: &Points,
    ) -> Option<(Vec<TrainPlan>, Vec<PointText>)> {
        let total = owned.len();
        let mut ok = true;
        let mut trains = Vec::new();
        let mut points = Vec::new();
        for (i, p) in owned.iter().enumerate() {
            let context = format!("sweep point {} of {total}: {}", i + 1, point_text(p));
            match self.point_plan(base, base_name, p, fallback, context) {
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
            for p in probes {
                let context = format!(
                    "a value the random block can draw (not among this seed's trials): {}",
                    point_text(p)
                );
                if self
                    .point_plan(base, base_name, p, fallback, context)
                    .is_none()
                {
                    ok = false;
                    break;
                }
            }
        }
        ok.then_some((trains, points))
    }

    /// Whether the sweep's objective is a figure the trials report: a metric of the base
    /// train, or an objective of a train with objectives.
    fn sweep_objective_known(
        &mut self,
        s: &ast::Sweep,
        trains: &[TrainPlan],
        objective: &Monitor,
        base_name: &str,
    ) -> bool {
        let setting = s.entries.iter().find_map(|e| match e {
            SweepEntry::Setting(en) if en.key.name == "objective" => Some(&en.value),
            _ => None,
        });
        let Some(t) = trains.first() else {
            return true;
        };
        if let Some(name) = &objective.objective {
            let names: Vec<String> = t
                .multi
                .as_ref()
                .map(|m| m.objectives.iter().map(|o| o.name.clone()).collect())
                .unwrap_or_default();
            if !names.contains(name) {
                // The figure's own span: the argument of `maximize(...)`.
                let span = setting
                    .map(|v| match &v.kind {
                        ExprKind::Call { args, .. } if args.len() == 1 => args[0].value.span,
                        _ => v.span,
                    })
                    .unwrap_or(s.name.span);
                if t.multi.is_none() {
                    // Not a train with objectives: the figure is simply unknown.
                    let path = [objective.split.clone(), name.clone()];
                    if let Err(figure) = monitor(&path) {
                        self.fail(Error::FigureUnknown { figure, span });
                    }
                    return false;
                }
                self.fail(Error::SweepFigureUnknown {
                    figure: objective.name(),
                    base: base_name.to_string(),
                    split: objective.split.clone(),
                    name: name.clone(),
                    objectives: names,
                    span,
                });
                return false;
            }
        }
        if !objective.metric.is_none_or(|m| t.metrics.contains(&m)) {
            self.fail(Error::SweepMetricMissing {
                figure: objective.name(),
                base: base_name.to_string(),
                span: setting.map_or(s.name.span, |v| v.span),
            });
            return false;
        }
        true
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
    ) -> Option<TrainPlan> {
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
        self.fail(
            Unknown::new(
                "mlx::sweep::path",
                format!(
                    "`{}` is not a train setting a sweep can vary",
                    path.join(".")
                ),
                span,
                "unknown path",
                head,
                ENTRY_KEYS.iter().copied(),
            )
            .otherwise("vary a train entry (`epochs`) or one argument of it (`optimizer.lr`, `model.hidden`)"),
        );
        false
    }

    fn objective(&mut self, e: &ast::Expr) -> Option<(Monitor, bool)> {
        let bad = |this: &mut Self| {
            this.fail(Error::SweepObjectiveShape { span: e.span });
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
                self.fail(Unknown::new(
                    "mlx::sweep::objective",
                    format!("unknown direction `{other}`"),
                    dir.span,
                    "maximize or minimize",
                    other,
                    ["maximize", "minimize"],
                ));
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
                Monitor {
                    split: path[0].clone(),
                    metric: None,
                    objective: Some(path[1].clone()),
                },
                maximize,
            )),
            Err(figure) => {
                self.fail(Error::FigureUnknown {
                    figure,
                    span: arg.value.span,
                });
                None
            }
        }
    }

    /// Sample `trials` points from the distributions, seeded; with them the probes, points
    /// at the ends of each axis's range to check (never run).
    fn random_points(
        &mut self,
        args: &'a [ast::Arg],
        assignments: &'a [ast::Assignment],
        span: Span,
    ) -> Option<(Points, Points)> {
        let (trials, seed) = self.random_args(args, span)?;
        let dists = self.random_dists(assignments)?;
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
            self.fail(Error::RandomRepeats {
                repeats,
                trials,
                span,
            });
        }
        let probes = probes(&out, &dists);
        Some((out, probes))
    }

    /// `random(trials: N, seed: S)`: the number of trials and the seed (0 by default).
    fn random_args(&mut self, args: &'a [ast::Arg], span: Span) -> Option<(usize, u64)> {
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
                    self.fail(Error::RandomArgRange {
                        key: key.to_string(),
                        span: a.value.span,
                    });
                    return None;
                }
                (other, _) => {
                    self.fail(Unknown::new(
                        "mlx::arg::unknown",
                        format!("`random` has no argument `{other}`"),
                        a.span,
                        "unknown argument",
                        other,
                        ["trials", "seed"],
                    ));
                    return None;
                }
            }
        }
        let Some(trials) = trials else {
            self.fail(Error::RandomTrialsMissing { span });
            return None;
        };
        Some((trials, seed))
    }

    /// The random block's axes: each setting's path, distribution and the distribution's span.
    fn random_dists(&mut self, assignments: &'a [ast::Assignment]) -> Option<Vec<RandomAxis<'a>>> {
        let mut dists: Vec<RandomAxis<'a>> = Vec::new();
        let mut seen: Vec<(Vec<String>, Span)> = Vec::new();
        for a in assignments {
            let path: Vec<String> = a.path.iter().map(|i| i.name.clone()).collect();
            let pspan = path_span(a);
            if let Some((_, prev)) = seen.iter().find(|(p, _)| *p == path) {
                self.fail(Error::RandomDrawTwice {
                    path: path.join("."),
                    span: pspan,
                    first: *prev,
                });
                return None;
            }
            seen.push((path.clone(), pspan));
            if !self.sweep_path_ok(&path, pspan) {
                return None;
            }
            dists.push((path, self.distribution(&a.value)?, a.value.span));
        }
        Some(dists)
    }

    fn distribution(&mut self, e: &'a ast::Expr) -> Option<Dist<'a>> {
        let bad = |this: &mut Self| {
            this.fail(Error::NotADistribution { span: e.span });
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
                    self.fail(Error::DistributionRange {
                        dist: name.name.clone(),
                        span: e.span,
                    });
                    return None;
                }
                match name.name.as_str() {
                    "uniform" => Dist::Uniform(lo, hi),
                    "log_uniform" => Dist::LogUniform(lo, hi),
                    _ => Dist::IntRange(lo as i64, hi as i64),
                }
            }
            other => {
                self.fail(Unknown::new(
                    "mlx::sweep::distribution",
                    format!("unknown distribution `{other}`"),
                    name.span,
                    "not a distribution",
                    other,
                    ["choice", "uniform", "log_uniform", "int_range"],
                ));
                return None;
            }
        };
        Some(d)
    }
}

/// A sweep's settings and its block, as checked; `ok` when none had errors.
struct SweepSettings<'a> {
    base: Option<(&'a ast::Train, String)>,
    objective: Option<(Monitor, bool)>,
    axes: Vec<Axis<'a>>,
    random_points: Option<(Points, Points)>,
    ok: bool,
}

/// One axis of a random block: its path, distribution and the distribution's span.
type RandomAxis<'a> = (Vec<String>, Dist<'a>, Span);

/// An assignment's path as written (`optimizer.lr`), or the whole assignment.
fn path_span(a: &ast::Assignment) -> Span {
    match (a.path.first(), a.path.last()) {
        (Some(f), Some(l)) => f.span.to(l.span),
        _ => a.span,
    }
}

/// The grid's cartesian product (first axis slowest).
fn grid_points(axes: &[Axis<'_>]) -> Points {
    let mut pts: Points = vec![Vec::new()];
    for a in axes {
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
}

/// Every value an axis can take must work, not only those this seed draws: points with one
/// axis at an end of its range (or at each choice), the others as in the first trial.
fn probes(out: &Points, dists: &[RandomAxis<'_>]) -> Points {
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
    probes
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
