//! The drift plots as SVG text: takes a drift report, gives an overview (each column's PSI
//! against its threshold) and, per drifted column, its reference and new histograms side by
//! side as shares of rows.

use super::profile::{ColumnDrift, Report};
use crate::diagnostics::Diagnostic;
use crate::plot::chart::{self, FONT, GRID, INK, MUTED, TRAIN, VAL};
use plotters::prelude::*;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 420;

fn err(e: impl std::fmt::Debug) -> Diagnostic {
    chart::draw_err("drift plot", e)
}

/// Bars of `groups` (one value per series per category), labelled by `labels`.
fn bars(
    title: &str,
    y_label: &str,
    labels: &[String],
    series: &[(&str, RGBColor, Vec<f64>)],
    line: Option<f64>,
) -> Result<String, Diagnostic> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = labels.len().max(1);
        let top = series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .chain(line)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.15;
        let mut c = ChartBuilder::on(&root)
            .caption(title, (FONT, 18).into_font().color(&INK))
            .margin(14)
            .x_label_area_size(if n > 8 { 90 } else { 40 })
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)
            .map_err(err)?;
        c.configure_mesh()
            .disable_x_mesh()
            .light_line_style(GRID)
            .bold_line_style(GRID)
            .y_desc(y_label)
            .x_labels(0)
            .y_label_style((FONT, 11).into_font().color(&MUTED))
            .axis_desc_style((FONT, 13).into_font().color(&INK))
            .draw()
            .map_err(err)?;
        let k = series.len().max(1) as f64;
        let width = 0.8 / k;
        for (s, (name, color, values)) in series.iter().enumerate() {
            let color = *color;
            c.draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + 0.1 + s as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, v.max(0.0))], color.filled())
            }))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
        if let Some(l) = line {
            c.draw_series(LineSeries::new(
                [(0.0, l), (n as f64, l)],
                ShapeStyle::from(&RED).stroke_width(1),
            ))
            .map_err(err)?
            .label(format!("threshold {l}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], RED));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(GRID)
            .label_font((FONT, 12).into_font().color(&INK))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        // Category labels under the middle of each group of bars.
        let rotate = n > 6;
        for (i, l) in labels.iter().enumerate() {
            let (px, py) = c.backend_coord(&(i as f64 + 0.5, 0.0));
            let style = (FONT, 11).into_font().color(&MUTED);
            let text = if rotate {
                Text::new(
                    l.clone(),
                    (px - 6, py + 6),
                    style.transform(FontTransform::Rotate90),
                )
            } else {
                Text::new(l.clone(), (px - 3 * l.len() as i32, py + 8), style)
            };
            root.draw(&text).map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

fn shares(c: &[u64]) -> Vec<f64> {
    let total = c.iter().sum::<u64>().max(1) as f64;
    c.iter().map(|x| *x as f64 / total).collect()
}

/// Every column's PSI against the PSI threshold.
pub fn overview(r: &Report) -> Result<String, Diagnostic> {
    let mut labels: Vec<String> = r.columns.iter().map(|c| c.name.clone()).collect();
    let mut psi: Vec<f64> = r.columns.iter().map(|c| c.psi).collect();
    if let Some(p) = &r.predictions {
        labels.push("(predictions)".into());
        psi.push(p.psi);
    }
    bars(
        &format!("{}: drift of {} rows against training", r.train, r.rows),
        "PSI",
        &labels,
        &[("PSI", TRAIN, psi)],
        r.thresholds.get("psi").copied(),
    )
}

/// One column's histogram, reference against new, as shares of rows.
pub fn column(r: &Report, c: &ColumnDrift) -> Result<String, Diagnostic> {
    bars(
        &format!(
            "{}: `{}` (PSI {:.3}; {})",
            r.train,
            c.name,
            c.psi,
            c.flags.join(", ")
        ),
        "share of rows",
        &c.bins,
        &[
            ("training", TRAIN, shares(&c.reference)),
            ("new", VAL, shares(&c.new)),
        ],
        None,
    )
}
