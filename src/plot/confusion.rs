//! Confusion-matrix heatmap: takes a k×k count matrix (rows true, columns predicted) and the
//! class names, gives an SVG with the count in every cell and a colour scale.

use super::chart::{AXIS, GRID, INK, MUTED, draw_err, font, nice_ticks};
use crate::diagnostics::Diagnostic;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// ColorBrewer "Blues", light to dark.
const BLUES: [(u8, u8, u8); 9] = [
    (247, 251, 255),
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
];

/// The colour of `t` in `0..=1`.
pub fn blues(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (BLUES.len() - 1) as f64;
    let i = (x.floor() as usize).min(BLUES.len() - 2);
    let f = x - i as f64;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Roughly how wide `text` is at `px` pixels in a sans-serif face.
fn text_width(text: &str, px: f64) -> f64 {
    text.chars().count() as f64 * px * 0.6
}

/// The heatmap as an SVG document. `classes` names the rows and columns (one per row).
pub fn render(
    title: &str,
    subtitle: &str,
    classes: &[String],
    m: &[Vec<u64>],
) -> Result<String, Diagnostic> {
    let k = m.len().max(1);
    let label_px = if k > 20 { 10.0 } else { 13.0 };
    let cell = (440.0 / k as f64).round().clamp(12.0, 90.0);
    let count_px = (cell * 0.3).clamp(9.0, 18.0);
    let show_counts = cell >= 18.0;
    let show_share = cell >= 64.0;
    let name = |i: usize| classes.get(i).cloned().unwrap_or_else(|| i.to_string());
    let widest = (0..k)
        .map(|i| text_width(&name(i), label_px))
        .fold(0.0, f64::max);
    let rotate_cols = widest > cell - 6.0;
    let max = m.iter().flatten().copied().max().unwrap_or(0).max(1);
    let (ticks, _) = nice_ticks(0.0, max as f64, 4, true);
    let tick_w = ticks
        .iter()
        .map(|t| text_width(&format!("{t}"), 12.0))
        .fold(0.0, f64::max);

    // Layout, in pixels.
    let top = 92.0;
    let subtitle = format!(
        "{subtitle}; rows: true class{}, columns: predicted",
        if show_share { " (% of the row)" } else { "" }
    );
    let side = cell * k as f64;
    let col_labels_h = if rotate_cols {
        widest * 0.92 + 12.0
    } else {
        24.0
    };
    let bar_w = 16.0;
    // The matrix, its labels and the colour scale, centred when the captions are wider.
    let content = 44.0 + widest + 10.0 + side + 26.0 + bar_w + 8.0 + tick_w + 24.0;
    let width = content
        .max(text_width(title, 18.0) + 48.0)
        .max(text_width(&subtitle, 13.0) + 48.0)
        .ceil();
    let shift = ((width - content) / 2.0).max(0.0);
    let left = shift + 44.0 + widest + 10.0;
    let bar_x = left + side + 26.0;
    let height = (top + side + col_labels_h + 30.0 + 16.0).ceil();

    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        let err = |e| draw_err("a confusion matrix", e);
        root.fill(&WHITE).map_err(err)?;
        let at = |x: f64, y: f64| (x.round() as i32, y.round() as i32);
        let centered = Pos::new(HPos::Center, VPos::Center);
        root.draw(&Text::new(
            title.to_string(),
            at(width / 2.0, 24.0),
            font(18.0).pos(centered),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            subtitle,
            at(width / 2.0, 50.0),
            font(13.0).color(&MUTED).pos(centered),
        ))
        .map_err(err)?;

        for (r, row) in m.iter().enumerate() {
            let total = row.iter().fold(0u64, |a, b| a.saturating_add(*b));
            for (c, &n) in row.iter().enumerate() {
                let x0 = left + c as f64 * cell;
                let y0 = top + r as f64 * cell;
                let t = n as f64 / max as f64;
                root.draw(&Rectangle::new(
                    [at(x0, y0), at(x0 + cell, y0 + cell)],
                    blues(t).filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new(
                    [at(x0, y0), at(x0 + cell, y0 + cell)],
                    WHITE.stroke_width(1),
                ))
                .map_err(err)?;
                if !show_counts {
                    continue;
                }
                let ink = if t > 0.55 {
                    WHITE
                } else if n == 0 {
                    RGBColor(160, 160, 160)
                } else {
                    INK
                };
                let share = show_share && total > 0 && n > 0;
                let cy = if share {
                    y0 + cell / 2.0 - 7.0
                } else {
                    y0 + cell / 2.0
                };
                root.draw(&Text::new(
                    n.to_string(),
                    at(x0 + cell / 2.0, cy),
                    font(count_px).color(&ink).pos(centered),
                ))
                .map_err(err)?;
                if share {
                    let share = 100.0 * n as f64 / total as f64;
                    let faint = if t > 0.55 {
                        WHITE.mix(0.85)
                    } else {
                        MUTED.mix(1.0)
                    };
                    root.draw(&Text::new(
                        format!("{share:.0}%"),
                        at(x0 + cell / 2.0, cy + count_px * 0.5 + 9.0),
                        font(11.0).color(&faint).pos(centered),
                    ))
                    .map_err(err)?;
                }
            }
        }
        root.draw(&Rectangle::new(
            [at(left, top), at(left + side, top + side)],
            GRID.stroke_width(1),
        ))
        .map_err(err)?;

        // Row names (true class) and the axis name, rotated.
        for i in 0..k {
            root.draw(&Text::new(
                name(i),
                at(left - 8.0, top + (i as f64 + 0.5) * cell),
                font(label_px).pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(err)?;
        }
        root.draw(&Text::new(
            "true class".to_string(),
            at(shift + 20.0, top + side / 2.0),
            font(14.5).pos(centered).transform(FontTransform::Rotate270),
        ))
        .map_err(err)?;

        // Column names (predicted class) and the axis name.
        for i in 0..k {
            let x = left + (i as f64 + 0.5) * cell;
            let style = if rotate_cols {
                font(label_px)
                    .pos(Pos::new(HPos::Right, VPos::Center))
                    .transform(FontTransform::Rotate270)
            } else {
                font(label_px).pos(Pos::new(HPos::Center, VPos::Top))
            };
            root.draw(&Text::new(name(i), at(x, top + side + 8.0), style))
                .map_err(err)?;
        }
        root.draw(&Text::new(
            "predicted class".to_string(),
            at(left + side / 2.0, top + side + col_labels_h + 16.0),
            font(14.5).pos(centered),
        ))
        .map_err(err)?;

        // The colour scale: dark (the largest count) at the top.
        let steps = 64;
        for s in 0..steps {
            let t0 = s as f64 / steps as f64;
            let t1 = (s + 1) as f64 / steps as f64;
            root.draw(&Rectangle::new(
                [
                    at(bar_x, top + side * (1.0 - t1)),
                    at(bar_x + bar_w, top + side * (1.0 - t0) + 0.5),
                ],
                blues((t0 + t1) / 2.0).filled(),
            ))
            .map_err(err)?;
        }
        root.draw(&Rectangle::new(
            [at(bar_x, top), at(bar_x + bar_w, top + side)],
            AXIS.stroke_width(1),
        ))
        .map_err(err)?;
        for t in ticks {
            let y = top + side * (1.0 - t / max as f64);
            root.draw(&PathElement::new(
                vec![at(bar_x + bar_w, y), at(bar_x + bar_w + 4.0, y)],
                AXIS.stroke_width(1),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                format!("{t}"),
                at(bar_x + bar_w + 7.0, y),
                font(12.0)
                    .color(&MUTED)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        root.draw(&Text::new(
            "count".to_string(),
            at(bar_x + bar_w / 2.0, top - 12.0),
            font(12.0).color(&MUTED).pos(centered),
        ))
        .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The title and subtitle of a run's confusion matrix.
pub fn captions(run: &str, split: &str, m: &[Vec<u64>]) -> (String, String) {
    let total = m.iter().flatten().fold(0u64, |a, b| a.saturating_add(*b));
    let right = m
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.get(i))
        .fold(0u64, |a, b| a.saturating_add(*b));
    let split_name = if split == "val" { "validation" } else { split };
    let title = format!("{run}: {split_name} confusion matrix");
    let subtitle = if total > 0 {
        format!(
            "{total} examples, accuracy {:.3}",
            right as f64 / total as f64
        )
    } else {
        "no examples".to_string()
    };
    (title, subtitle)
}
