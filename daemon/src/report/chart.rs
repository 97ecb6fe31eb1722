//! Draws a [`SessionReport`] with `plotters`: the header (title, protocol, unit, outcome,
//! quality indicators) above a chart of skin and mist temperature over time with the target
//! and floor lines, the spray shaded and the laser stop and spray start marked.

use super::font::FAMILY;
use super::text;
use super::{ReportError, SessionReport};
use crate::dbus::convert::CurvePoint;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

const SKIN: RGBColor = RGBColor(200, 30, 30);
const MIST: RGBColor = RGBColor(20, 90, 200);
const TARGET: RGBColor = RGBColor(0, 130, 60);
const FLOOR: RGBColor = RGBColor(130, 0, 130);
const LASER: RGBColor = RGBColor(225, 110, 0);
const GOOD: RGBColor = RGBColor(0, 110, 50);
const BAD: RGBColor = RGBColor(185, 0, 0);
const INK: RGBColor = RGBColor(30, 30, 30);
const SPRAY_SHADE: RGBAColor = RGBAColor(20, 90, 200, 0.10);

fn draw_err<E: std::fmt::Display>(e: E) -> ReportError {
    ReportError::Draw(e.to_string())
}

/// The report as SVG text.
pub(super) fn svg(r: &SessionReport, size: (u32, u32)) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        draw(&root, r)?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

/// The report as PNG bytes (8-bit RGB).
pub(super) fn png(r: &SessionReport, (w, h): (u32, u32)) -> Result<Vec<u8>, ReportError> {
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root, r)?;
        root.present().map_err(draw_err)?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let png_err = |e: png::EncodingError| ReportError::Png(e.to_string());
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(&rgb).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(out)
}

/// Pixel sizes scaled to the picture's height (designed at 800 px).
struct Scale(f64);

impl Scale {
    fn px(&self, at_800: f64) -> u32 {
        (at_800 * self.0).round().max(1.0) as u32
    }
    fn font(&self, at_800: f64, style: FontStyle, color: &RGBColor) -> TextStyle<'static> {
        // `FontDesc::style` keeps the face already looked up: ask for the style up front.
        FontDesc::new(FontFamily::from(FAMILY), at_800 * self.0, style).color(color)
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &SessionReport,
) -> Result<(), ReportError> {
    root.fill(&WHITE).map_err(draw_err)?;
    let scale = Scale(f64::from(root.dim_in_pixel().1) / 800.0);
    let (header, plot) = root.split_vertically(scale.px(228.0));
    draw_header(&header, r, &scale)?;
    draw_chart(&plot, r, &scale)
}

fn draw_header<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &SessionReport,
    k: &Scale,
) -> Result<(), ReportError> {
    let s = &r.session;
    let left = k.px(24.0) as i32;
    let line = |y: f64| k.px(y) as i32;
    let normal = k.font(17.0, FontStyle::Normal, &INK);
    area.draw_text(
        &text::title(s),
        &k.font(30.0, FontStyle::Bold, &INK),
        (left, line(14.0)),
    )
    .map_err(draw_err)?;
    area.draw_text(&text::subtitle(s), &normal, (left, line(56.0)))
        .map_err(draw_err)?;
    area.draw_text(&format!("Unit: {}", r.unit), &normal, (left, line(82.0)))
        .map_err(draw_err)?;
    let (outcome, ok) = text::outcome(s);
    let colour = if ok { GOOD } else { BAD };
    area.draw_text(
        &outcome,
        &k.font(22.0, FontStyle::Bold, &colour),
        (left, line(110.0)),
    )
    .map_err(draw_err)?;
    let half = (area.dim_in_pixel().0 / 2) as i32;
    for (i, indicator) in text::indicators(s).iter().enumerate() {
        let (x, row) = if i < 3 { (left, i) } else { (half, i - 3) };
        area.draw_text(
            &format!("• {indicator}"),
            &normal,
            (x, line(146.0 + 25.0 * row as f64)),
        )
        .map_err(draw_err)?;
    }
    Ok(())
}

/// A curve as runs of finite values (a missing reading breaks the line).
fn runs(curve: &[CurvePoint], value: impl Fn(&CurvePoint) -> f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for p in curve {
        let v = value(p);
        if v.is_finite() {
            if let Some(run) = out.last_mut() {
                run.push((f64::from(p.0) / 1000.0, v));
            }
        } else if out.last().is_some_and(|r| !r.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// Intervals (s) during which the valve was open.
fn spray_intervals(curve: &[CurvePoint]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut open: Option<f64> = None;
    for p in curve {
        let t = f64::from(p.0) / 1000.0;
        match (p.6, open) {
            (true, None) => open = Some(t),
            (false, Some(t0)) => {
                out.push((t0, t));
                open = None;
            }
            _ => {}
        }
    }
    if let (Some(t0), Some(last)) = (open, curve.last()) {
        out.push((t0, f64::from(last.0) / 1000.0));
    }
    out
}

fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &SessionReport,
    k: &Scale,
) -> Result<(), ReportError> {
    let s = &r.session;
    let skin = runs(&r.curve, |p| p.2);
    let mist = runs(&r.curve, |p| p.1);
    let sprays = spray_intervals(&r.curve);
    let laser_x = s.laser_to_spray_ms.map(|ms| -ms / 1000.0);

    let end = r
        .curve
        .last()
        .map(|p| f64::from(p.0) / 1000.0)
        .into_iter()
        .chain(s.duration_s)
        .fold(1.0_f64, f64::max);
    let start = laser_x.unwrap_or(0.0).min(0.0);
    let pad = (end - start) * 0.03;
    let x_range = (start - pad)..(end + pad);
    // Under 10 s the ticks fall between whole seconds.
    let short = end - start < 10.0;
    let mut values: Vec<f64> = skin.iter().chain(&mist).flatten().map(|p| p.1).collect();
    values.push(s.skin_floor_c);
    values.extend(s.skin_target_c);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let y_range = (lo - 6.0).floor()..(hi + 4.0).ceil();
    let (y_lo, y_hi) = (y_range.start, y_range.end);

    let mut chart = ChartBuilder::on(area)
        .margin_left(k.px(16.0))
        .margin_right(k.px(28.0))
        .margin_bottom(k.px(12.0))
        .x_label_area_size(k.px(62.0))
        .y_label_area_size(k.px(78.0))
        .build_cartesian_2d(x_range, y_range)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(text::X_AXIS)
        .y_desc(text::Y_AXIS)
        .axis_desc_style(k.font(18.0, FontStyle::Normal, &INK))
        .label_style(k.font(15.0, FontStyle::Normal, &INK))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(205, 205, 205))
        .x_label_formatter(&|x| {
            if short {
                format!("{x:.1}")
            } else {
                format!("{x:.0}")
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(draw_err)?;

    // The spray, shaded behind the curves.
    for (i, (t0, t1)) in sprays.iter().enumerate() {
        let shade = chart
            .draw_series(std::iter::once(Rectangle::new(
                [(*t0, y_lo), (*t1, y_hi)],
                SPRAY_SHADE.filled(),
            )))
            .map_err(draw_err)?;
        if i == 0 {
            shade
                .label("Mist spraying (valve open)")
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 7), (x + 22, y + 7)], SPRAY_SHADE.filled())
                });
        }
    }

    let stroke = k.px(3.0);
    let thin = k.px(2.0);
    let dash = (k.px(12.0), k.px(8.0));
    // The protocol's levels: dashed lines across the whole time axis.
    let mut levels = Vec::new();
    if let Some(t) = s.skin_target_c {
        levels.push((t, TARGET, format!("Target skin temperature ({t:.1} °C)")));
    }
    let floor = s.skin_floor_c;
    levels.push((
        floor,
        FLOOR,
        format!("Skin floor, the safety limit ({floor:.1} °C)"),
    ));
    for (level, colour, name) in levels {
        chart
            .draw_series(DashedLineSeries::new(
                [(start - pad, level), (end + pad, level)],
                dash.0,
                dash.1,
                colour.stroke_width(thin),
            ))
            .map_err(draw_err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 22, y)], colour.stroke_width(2)));
    }

    for (runs, colour, name) in [
        (&mist, MIST, text::MIST_LABEL),
        (&skin, SKIN, text::SKIN_LABEL),
    ] {
        for (i, run) in runs.iter().enumerate() {
            let series = chart
                .draw_series(LineSeries::new(
                    run.iter().copied(),
                    colour.stroke_width(stroke),
                ))
                .map_err(draw_err)?;
            if i == 0 {
                series.label(name).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 22, y)], colour.stroke_width(3))
                });
            }
        }
    }

    // Laser stop and spray start and end: vertical lines, labelled at the bottom of the plot
    // (under the curves, clear of the legend), stacked when on the same side.
    let label = k.font(15.0, FontStyle::Bold, &INK);
    let step = k.px(20.0) as i32;
    // (x, colour, words, label right of the line)
    let mut marks: Vec<(f64, RGBColor, &str, bool)> = Vec::new();
    if let Some(x) = laser_x {
        marks.push((x, LASER, "◀ Laser stopped", true));
    }
    if let Some((t0, _)) = sprays.first() {
        marks.push((*t0, MIST, "◀ Spray started", true));
    }
    if let Some((_, t1)) = sprays.last() {
        marks.push((*t1, MIST, "Spray ended ▶", false));
    }
    let (mut rows_right, mut rows_left) = (0, 0);
    for (x, colour, words, right_of_line) in &marks {
        chart
            .draw_series(LineSeries::new(
                [(*x, y_lo), (*x, y_hi)],
                colour.stroke_width(thin),
            ))
            .map_err(draw_err)?;
        let rows = if *right_of_line {
            &mut rows_right
        } else {
            &mut rows_left
        };
        let (dx, anchor) = if *right_of_line {
            (6, HPos::Left)
        } else {
            (-6, HPos::Right)
        };
        let style = label
            .clone()
            .color(colour)
            .pos(Pos::new(anchor, VPos::Bottom));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((*x, y_lo))
                    + Text::new(words.to_string(), (dx, -6 - step * *rows), style),
            ))
            .map_err(draw_err)?;
        *rows += 1;
    }

    if r.curve.is_empty() {
        chart
            .draw_series(std::iter::once(Text::new(
                "No curve was recorded for this session",
                ((start + end) / 2.0, (y_lo + y_hi) / 2.0),
                k.font(22.0, FontStyle::Bold, &BAD)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            )))
            .map_err(draw_err)?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(k.px(14.0))
        .label_font(k.font(15.0, FontStyle::Normal, &INK))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}
