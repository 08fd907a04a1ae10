//! Pictures of explanations: takes permutation importances, or an image with its per-pixel
//! attributions, gives a horizontal bar chart as SVG (plotters, in the style of `mlx plot`)
//! or a PNG of the image beside its heat map.

use super::permutation::Document;
use crate::diagnostics::Diagnostic;
use crate::plot::chart::{AXIS, GRID, INK, MUTED, TRAIN, draw_err, font, nice_ticks};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The importances as bars (most important on top) with ±1 std whiskers.
pub fn importance_svg(doc: &Document) -> Result<String, Diagnostic> {
    let n = doc.columns.len().max(1);
    let label_px = 13.0;
    let widest = doc
        .columns
        .iter()
        .map(|c| c.column.chars().count() as f64 * label_px * 0.6)
        .fold(0.0, f64::max);
    let left = (widest + 24.0).round() as i32;
    let bar_h = 26;
    let top = 64;
    let plot_w = 460;
    let width = (left + plot_w + 40) as u32;
    let height = (top + bar_h * n as i32 + 56) as u32;
    let lo = doc
        .columns
        .iter()
        .map(|c| c.mean - c.std)
        .fold(0.0, f64::min);
    let hi = doc
        .columns
        .iter()
        .map(|c| c.mean + c.std)
        .fold(0.0, f64::max);
    let (lo, hi) = if hi - lo > 0.0 && (hi - lo).is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let (ticks, _) = nice_ticks(lo, hi, 5, false);
    let lo = ticks.first().copied().unwrap_or(lo).min(lo);
    let hi = ticks.last().copied().unwrap_or(hi).max(hi);
    let x_of = |v: f64| left + ((v - lo) / (hi - lo) * f64::from(plot_w)).round() as i32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err("importance", e))?;
        let title = format!("Permutation importance: {}", doc.train);
        root.draw(&Text::new(title, (12, 12), font(16.0).color(&INK)))
            .map_err(|e| draw_err("importance", e))?;
        let sub = format!(
            "{} lost when a column is shuffled ({} rows of {}, mean ± std of {} shuffles)",
            doc.metric, doc.rows, doc.rows_from, doc.repeats
        );
        root.draw(&Text::new(sub, (12, 36), font(12.0).color(&MUTED)))
            .map_err(|e| draw_err("importance", e))?;
        let bottom = top + bar_h * n as i32;
        for t in &ticks {
            let x = x_of(*t);
            root.draw(&PathElement::new(
                vec![(x, top), (x, bottom)],
                ShapeStyle::from(&GRID).stroke_width(1),
            ))
            .map_err(|e| draw_err("importance", e))?;
            let style = font(11.0)
                .color(&MUTED)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(
                crate::plot::chart::format_sig(*t),
                (x, bottom + 6),
                style,
            ))
            .map_err(|e| draw_err("importance", e))?;
        }
        let zero = x_of(0.0);
        for (i, c) in doc.columns.iter().enumerate() {
            let y0 = top + bar_h * i as i32 + 4;
            let y1 = y0 + bar_h - 8;
            let xm = x_of(if c.mean.is_finite() { c.mean } else { 0.0 });
            let (a, b) = if xm < zero { (xm, zero) } else { (zero, xm) };
            root.draw(&Rectangle::new(
                [(a, y0), (b.max(a + 1), y1)],
                TRAIN.filled(),
            ))
            .map_err(|e| draw_err("importance", e))?;
            if c.std.is_finite() && c.std > 0.0 {
                let ym = (y0 + y1) / 2;
                let (w0, w1) = (x_of(c.mean - c.std), x_of(c.mean + c.std));
                let ink = ShapeStyle::from(&INK).stroke_width(1);
                for seg in [
                    vec![(w0, ym), (w1, ym)],
                    vec![(w0, ym - 4), (w0, ym + 4)],
                    vec![(w1, ym - 4), (w1, ym + 4)],
                ] {
                    root.draw(&PathElement::new(seg, ink))
                        .map_err(|e| draw_err("importance", e))?;
                }
            }
            let style = font(label_px)
                .color(&INK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(
                c.column.clone(),
                (left - 8, (y0 + y1) / 2),
                style,
            ))
            .map_err(|e| draw_err("importance", e))?;
        }
        root.draw(&PathElement::new(
            vec![(zero, top), (zero, bottom)],
            ShapeStyle::from(&AXIS).stroke_width(1),
        ))
        .map_err(|e| draw_err("importance", e))?;
        root.present().map_err(|e| draw_err("importance", e))?;
    }
    Ok(svg)
}

/// Pixels per image pixel in a heat map.
const ZOOM: u32 = 8;

/// A PNG of an image (its model-input values, grey from darkest to lightest) beside its
/// attributions (red where they raise the output, blue where they lower it, white at zero;
/// channels summed). `shape` is the image's shape, `[H, W]` or `[C, H, W]`.
pub fn heat_map_png(shape: &[usize], x: &[f32], attr: &[f32]) -> Result<Vec<u8>, Diagnostic> {
    let (h, w) = match shape {
        [.., h, w] => (*h, *w),
        [w] => (1, *w),
        [] => (1, 1),
    };
    let plane = (h * w).max(1);
    let channels = (x.len() / plane).max(1);
    let at = |v: &[f32], p: usize| -> f32 {
        (0..channels)
            .map(|c| v.get(c * plane + p).copied().unwrap_or(0.0))
            .sum()
    };
    let grey: Vec<f32> = (0..plane).map(|p| at(x, p)).collect();
    let heat: Vec<f32> = (0..plane).map(|p| at(attr, p)).collect();
    let (gmin, gmax) = grey
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let span = if gmax > gmin { gmax - gmin } else { 1.0 };
    let top = heat.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let top = if top > 0.0 { top } else { 1.0 };
    let gap = 4;
    let (iw, ih) = (w as u32 * ZOOM, h as u32 * ZOOM);
    let mut img = image::RgbImage::from_pixel(2 * iw + gap, ih, image::Rgb([255, 255, 255]));
    for yy in 0..ih {
        for xx in 0..iw {
            let p = (yy / ZOOM) as usize * w + (xx / ZOOM) as usize;
            let g = (((grey[p] - gmin) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
            img.put_pixel(xx, yy, image::Rgb([g, g, g]));
            let t = (heat[p] / top).clamp(-1.0, 1.0);
            let fade = (255.0 * (1.0 - t.abs())).round() as u8;
            let c = if t >= 0.0 {
                [255, fade, fade]
            } else {
                [fade, fade, 255]
            };
            img.put_pixel(iw + gap + xx, yy, image::Rgb(c));
        }
    }
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| Diagnostic::internal(format!("encoding a heat map failed: {e}")))?;
    Ok(bytes)
}
