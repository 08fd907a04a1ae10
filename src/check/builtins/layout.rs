//! Builtins that move elements: reshape, permute, transpose, squeeze, unsqueeze, slice,
//! index, concat.

use super::*;

pub(super) fn product(dims: &[Dim]) -> Dim {
    dims.iter().fold(Dim::constant(1), |acc, d| acc.mul(d))
}

pub(super) fn reshape(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "reshape", args, &["x", "shape"], 2, span)?;
    let x = tensor(c, b, &m, "x")?;
    let target = shape_list(c, b, &m, "shape").ok()?;
    let from = b.shape(x).to_vec();
    let total = product(&from);
    let minus = Dim::constant(-1);
    let holes = target.iter().filter(|(d, _)| *d == minus).count();
    if holes > 1 {
        c.fail(Error::ReshapeHoles { span: m.span });
        return None;
    }
    let known: Vec<Dim> = target
        .iter()
        .filter(|(d, _)| *d != minus)
        .map(|(d, _)| d.clone())
        .collect();
    for (d, s) in &target {
        if *d != minus && !c.positive_dim(b, d, *s) {
            return None;
        }
    }
    let kp = product(&known);
    let mut out: Vec<Dim> = Vec::new();
    let fail = |c: &mut Checker<'_>, b: &Body| {
        c.fail(Error::ReshapeCount {
            total: total.clone(),
            target: target.iter().map(|(d, _)| d.clone()).collect(),
            span: m.span,
            x: Shaped::of(b, x),
        });
    };
    if holes == 1 {
        let inferred = total.floor_div(&kp);
        match inferred {
            Some(d) if d.mul(&kp) == total || (b.generic && !d.to_string().contains('/')) => {
                for (t, _) in &target {
                    out.push(if *t == minus { d.clone() } else { t.clone() });
                }
            }
            _ => {
                if b.generic {
                    return Some(b.add(
                        Op::Reshape(x),
                        target.iter().map(|(d, _)| d.clone()).collect(),
                        span,
                    ));
                }
                fail(c, b);
                return None;
            }
        }
    } else {
        if !c.same_dim(b, &kp, &total) {
            fail(c, b);
            return None;
        }
        out = known;
    }
    Some(b.add(Op::Reshape(x), out, span))
}

pub(super) fn permute(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "permute", args, &["x", "axes"], 2, span)?;
    let x = tensor(c, b, &m, "x")?;
    let shape = b.shape(x).to_vec();
    let a = m.get("axes")?;
    let Val::List(items) = &a.value else {
        c.fail(Error::PermuteNotList { span: a.span });
        return None;
    };
    let mut perm = Vec::new();
    for (v, s) in items {
        let n = match v {
            Val::Int(d) => d.as_const(),
            _ => None,
        };
        match n.and_then(|n| norm_axis(n, shape.len())) {
            Some(p) if !perm.contains(&p) => perm.push(p),
            _ => {
                c.fail(Error::PermuteAxis { span: *s });
                return None;
            }
        }
    }
    if perm.len() != shape.len() {
        c.fail(Error::PermuteRank {
            shape,
            given: perm.len(),
            span: a.span,
        });
        return None;
    }
    let out = perm.iter().map(|p| shape[*p].clone()).collect();
    Some(b.add(Op::Permute(x, perm), out, span))
}

pub(super) fn transpose(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "transpose", args, &["x", "a", "b"], 1, span)?;
    let x = tensor(c, b, &m, "x")?;
    let shape = b.shape(x).to_vec();
    let r = shape.len();
    if r < 2 {
        shape_error(
            c,
            b,
            "`transpose` needs a tensor of rank 2 or more",
            span,
            &[x],
        );
        return None;
    }
    let ia = int(c, &m, "a").ok()?.unwrap_or(-2);
    let ib = int(c, &m, "b").ok()?.unwrap_or(-1);
    let (Some(pa), Some(pb)) = (norm_axis(ia, r), norm_axis(ib, r)) else {
        axis_error(c, if norm_axis(ia, r).is_none() { ia } else { ib }, r, span);
        return None;
    };
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(pa, pb);
    let out = perm.iter().map(|p| shape[*p].clone()).collect();
    Some(b.add(Op::Permute(x, perm), out, span))
}

pub(super) fn squeeze(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "squeeze", args, &["x", "axis"], 2, span)?;
    let x = tensor(c, b, &m, "x")?;
    let shape = b.shape(x).to_vec();
    let a = int(c, &m, "axis").ok()??;
    let Some(ax) = norm_axis(a, shape.len()) else {
        let s = m.get("axis").map_or(span, |x| x.span);
        axis_error(c, a, shape.len(), s);
        return None;
    };
    if !c.same_dim(b, &shape[ax], &Dim::constant(1)) {
        c.fail(Error::SqueezeNotOne {
            axis: a,
            size: shape[ax].clone(),
            span,
            x: Shaped::of(b, x),
        });
        return None;
    }
    let mut out = shape;
    out.remove(ax);
    Some(b.add(Op::Reshape(x), out, span))
}

pub(super) fn unsqueeze(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "unsqueeze", args, &["x", "axis"], 2, span)?;
    let x = tensor(c, b, &m, "x")?;
    let mut shape = b.shape(x).to_vec();
    let a = int(c, &m, "axis").ok()??;
    let Some(ax) = norm_axis(a, shape.len() + 1) else {
        axis_error(c, a, shape.len() + 1, span);
        return None;
    };
    shape.insert(ax, Dim::constant(1));
    Some(b.add(Op::Reshape(x), shape, span))
}

/// `slice(x, start, len, axis: -1)`, or `index(x, i, axis: 0)` which also drops the axis.
pub(super) fn slice(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
    index: bool,
) -> Option<NodeId> {
    let (name, spec, req): (&'static str, &[&'static str], usize) = if index {
        ("index", &["x", "i", "axis"], 2)
    } else {
        ("slice", &["x", "start", "len", "axis"], 3)
    };
    let m = match_args(c, name, args, spec, req, span)?;
    let x = tensor(c, b, &m, "x")?;
    let shape = b.shape(x).to_vec();
    let a = int(c, &m, "axis")
        .ok()?
        .unwrap_or(if index { 0 } else { -1 });
    let Some(ax) = norm_axis(a, shape.len()) else {
        axis_error(c, a, shape.len(), span);
        return None;
    };
    let start = int_or_sym(c, &m, if index { "i" } else { "start" }).ok()??;
    let len = if index {
        Dim::constant(1)
    } else {
        int_or_sym(c, &m, "len").ok()??
    };
    let size = shape[ax].clone();
    // A negative start counts from the end.
    let start = match start.as_const() {
        Some(s) if s < 0 => size.add(&start),
        _ => start,
    };
    if let (Some(s), Some(l), Some(n)) = (start.as_const(), len.as_const(), size.as_const())
        && (s < 0 || l < 1 || s + l > n)
    {
        c.fail(Error::SliceOutOfBounds {
            name,
            start: s,
            end: s + l,
            axis: a,
            size: n,
            span,
            x: Shaped::of(b, x),
        });
        return None;
    }
    let mut out = shape.clone();
    out[ax] = len;
    let n = b.add(Op::Slice { x, axis: ax, start }, out.clone(), span);
    if index {
        out.remove(ax);
        return Some(b.add(Op::Reshape(n), out, span));
    }
    Some(n)
}

pub(super) fn concat(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "concat", args, &["xs", "axis"], 1, span)?;
    let a = m.get("xs")?.clone();
    let Val::List(items) = a.value else {
        c.fail(Error::ConcatNotList { span: a.span });
        return None;
    };
    let mut nodes = Vec::new();
    for (v, s) in items {
        match c.as_tensor(b, v.clone(), s) {
            Some(n) => nodes.push(n),
            None => {
                if !v.is_poison() {
                    c.fail(Error::ConcatNotTensor { span: s });
                }
                return None;
            }
        }
    }
    let Some(first) = nodes.first() else {
        c.fail(Error::ConcatEmpty { span: a.span });
        return None;
    };
    let base = b.shape(*first).to_vec();
    let ai = int(c, &m, "axis").ok()?.unwrap_or(0);
    let Some(ax) = norm_axis(ai, base.len()) else {
        axis_error(c, ai, base.len(), span);
        return None;
    };
    let mut total = Dim::constant(0);
    for n in &nodes {
        let s = b.shape(*n).to_vec();
        let fits = s.len() == base.len()
            && s.iter()
                .zip(&base)
                .enumerate()
                .all(|(i, (p, q))| i == ax || c.same_dim(b, p, q));
        if !fits {
            shape_error(
                c,
                b,
                &format!("`concat` needs equal shapes except on axis {ai}"),
                span,
                &[*first, *n],
            );
            return None;
        }
        total = total.add(&s[ax]);
    }
    let mut out = base;
    out[ax] = total;
    Some(b.add(
        Op::Concat {
            xs: nodes,
            axis: ax,
        },
        out,
        span,
    ))
}
