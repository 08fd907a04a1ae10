//! Builtins over sliding windows and with state: conv, max_pool, avg_pool, plus fill,
//! bernoulli, gather and batch_norm.

use super::*;

/// A sliding window's geometry along one axis.
#[derive(Clone, Copy)]
struct Window {
    kernel: i64,
    stride: i64,
    padding: i64,
}

fn window_out(
    c: &mut Checker<'_>,
    b: &Body,
    input: &Dim,
    w: &Window,
    what: &'static str,
    span: Span,
    x: NodeId,
) -> Option<Dim> {
    let Window {
        kernel,
        stride,
        padding,
    } = *w;
    let padded = input.add(&Dim::constant(2 * padding));
    if let Some(p) = padded.as_const()
        && p < kernel
    {
        c.fail(Error::WindowTooLarge {
            what,
            kernel,
            input: input.clone(),
            padding,
            span,
            x: Shaped::of(b, x),
        });
        return None;
    }
    padded
        .sub(&Dim::constant(kernel))
        .floor_div(&Dim::constant(stride))
        .map(|d| d.add(&Dim::constant(1)))
}

fn positive_arg(c: &mut Checker<'_>, m: &Matched, k: &str, v: i64, min: i64) -> Option<i64> {
    if v < min {
        let s = m.get(k).map_or(m.span, |a| a.span);
        c.fail(Error::ArgumentTooSmall {
            key: k.to_string(),
            name: m.name,
            min,
            value: v,
            span: s,
        });
        return None;
    }
    Some(v)
}

pub(super) fn conv(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "conv", args, &["x", "w", "stride", "padding"], 2, span)?;
    let x = tensor(c, b, &m, "x")?;
    let w = tensor(c, b, &m, "w")?;
    let stride = {
        let v = int(c, &m, "stride").ok()?.unwrap_or(1);
        positive_arg(c, &m, "stride", v, 1)?
    };
    let padding = {
        let v = int(c, &m, "padding").ok()?.unwrap_or(0);
        positive_arg(c, &m, "padding", v, 0)?
    };
    let (xs, ws) = (b.shape(x).to_vec(), b.shape(w).to_vec());
    if xs.len() != 4 {
        c.fail(Error::ConvRank {
            span,
            x: Shaped::of(b, x),
        });
        return None;
    }
    if ws.len() != 4 {
        shape_error(
            c,
            b,
            "a convolution weight must have shape [out, in, kh, kw]",
            span,
            &[w],
        );
        return None;
    }
    if !c.same_dim(b, &xs[1], &ws[1]) {
        c.fail(Error::Channels {
            expected: ws[1].clone(),
            found: xs[1].clone(),
            span,
            x: Shaped::of(b, x),
        });
        return None;
    }
    let (Some(kh), Some(kw)) = (ws[2].as_const(), ws[3].as_const()) else {
        if b.generic {
            return Some(b.add(
                Op::Conv {
                    x,
                    w,
                    stride,
                    padding,
                },
                vec![xs[0].clone(), ws[0].clone(), Dim::sym("H'"), Dim::sym("W'")],
                span,
            ));
        }
        shape_error(
            c,
            b,
            "the kernel size of a convolution must be known",
            span,
            &[w],
        );
        return None;
    };
    let oh = window_out(
        c,
        b,
        &xs[2],
        &Window {
            kernel: kh,
            stride,
            padding,
        },
        "convolution",
        span,
        x,
    )?;
    let ow = window_out(
        c,
        b,
        &xs[3],
        &Window {
            kernel: kw,
            stride,
            padding,
        },
        "convolution",
        span,
        x,
    )?;
    Some(b.add(
        Op::Conv {
            x,
            w,
            stride,
            padding,
        },
        vec![xs[0].clone(), ws[0].clone(), oh, ow],
        span,
    ))
}

pub(super) fn pool(
    c: &mut Checker<'_>,
    b: &mut Body,
    name: &'static str,
    kind: PoolKind,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(
        c,
        name,
        args,
        &["x", "kernel", "stride", "padding"],
        2,
        span,
    )?;
    let x = tensor(c, b, &m, "x")?;
    let kernel = {
        let v = int(c, &m, "kernel").ok()??;
        positive_arg(c, &m, "kernel", v, 1)?
    };
    let stride = {
        let v = int(c, &m, "stride").ok()?.unwrap_or(kernel);
        positive_arg(c, &m, "stride", v, 1)?
    };
    let padding = {
        let v = int(c, &m, "padding").ok()?.unwrap_or(0);
        positive_arg(c, &m, "padding", v, 0)?
    };
    let xs = b.shape(x).to_vec();
    if xs.len() != 4 {
        c.fail(Error::PoolRank {
            span,
            x: Shaped::of(b, x),
        });
        return None;
    }
    if padding * 2 > kernel {
        c.fail(Error::PoolPadding {
            padding,
            kernel,
            span,
        });
        return None;
    }
    let oh = window_out(
        c,
        b,
        &xs[2],
        &Window {
            kernel,
            stride,
            padding,
        },
        "pooling",
        span,
        x,
    )?;
    let ow = window_out(
        c,
        b,
        &xs[3],
        &Window {
            kernel,
            stride,
            padding,
        },
        "pooling",
        span,
        x,
    )?;
    Some(b.add(
        Op::Pool {
            kind,
            x,
            kernel,
            stride,
            padding,
        },
        vec![xs[0].clone(), xs[1].clone(), oh, ow],
        span,
    ))
}

pub(super) fn fill(
    c: &mut Checker<'_>,
    b: &mut Body,
    name: &'static str,
    value: Option<f64>,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let spec: &[&'static str] = if value.is_some() {
        &["shape"]
    } else {
        &["shape", "value"]
    };
    let m = match_args(c, name, args, spec, spec.len(), span)?;
    let shape = shape_list(c, b, &m, "shape").ok()?;
    for (d, s) in &shape {
        if !c.positive_dim(b, d, *s) {
            return None;
        }
    }
    let v = match value {
        Some(v) => v,
        None => float(c, &m, "value").ok()??.unwrap_or(0.0),
    };
    Some(b.add(
        Op::Fill(v),
        shape.into_iter().map(|(d, _)| d).collect(),
        span,
    ))
}

pub(super) fn bernoulli(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "bernoulli", args, &["like", "p"], 2, span)?;
    let x = tensor(c, b, &m, "like")?;
    let p = float(c, &m, "p").ok()??;
    if let Some(p) = p
        && !(0.0..=1.0).contains(&p)
    {
        let s = m.get("p").map_or(span, |a| a.span);
        c.fail(Error::Probability { p, span: s });
        return None;
    }
    let s = b.shape(x).to_vec();
    Some(b.add(Op::Bernoulli(p.unwrap_or(0.5)), s, span))
}

pub(super) fn gather(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(c, "gather", args, &["table", "indices"], 2, span)?;
    let t = tensor(c, b, &m, "table")?;
    let i = tensor(c, b, &m, "indices")?;
    let ts = b.shape(t).to_vec();
    if ts.is_empty() {
        shape_error(c, b, "`gather` needs a table of rank 1 or more", span, &[t]);
        return None;
    }
    let mut out = b.shape(i).to_vec();
    out.extend(ts[1..].iter().cloned());
    Some(b.add(
        Op::Gather {
            table: t,
            indices: i,
        },
        out,
        span,
    ))
}

pub(super) fn batch_norm(
    c: &mut Checker<'_>,
    b: &mut Body,
    args: Vec<CallArg>,
    span: Span,
) -> Option<NodeId> {
    let m = match_args(
        c,
        "batch_norm",
        args,
        &["x", "gamma", "beta", "momentum", "eps"],
        3,
        span,
    )?;
    let x = tensor(c, b, &m, "x")?;
    let g = tensor(c, b, &m, "gamma")?;
    let be = tensor(c, b, &m, "beta")?;
    let momentum = float(c, &m, "momentum")
        .ok()?
        .unwrap_or(Some(0.1))
        .unwrap_or(0.1);
    let eps = float(c, &m, "eps")
        .ok()?
        .unwrap_or(Some(1e-5))
        .unwrap_or(1e-5);
    let xs = b.shape(x).to_vec();
    if xs.len() < 2 {
        shape_error(
            c,
            b,
            "`batch_norm` needs input of rank 2 or more [batch, channels, ...]",
            span,
            &[x],
        );
        return None;
    }
    for p in [g, be] {
        let ps = b.shape(p).to_vec();
        if ps.len() != 1 || !c.same_dim(b, &ps[0], &xs[1]) {
            shape_error(
                c,
                b,
                &format!("`batch_norm` needs gamma and beta of shape [{}]", xs[1]),
                span,
                &[x, p],
            );
            return None;
        }
    }
    Some(b.add(
        Op::BatchNorm {
            x,
            gamma: g,
            beta: be,
            momentum,
            eps,
        },
        xs,
        span,
    ))
}
