//! The cooling curve: skin and mist over time, with the protocol's target band and the
//! cold-injury floor, drawn on a canvas.

use super::{CYAN, GREEN, GREY, RED};
use crate::app::Message;
use crate::model::CurveSample;
use iced::widget::canvas::{self, Frame, Path, Stroke};
use iced::{mouse, Color, Point, Rectangle, Renderer, Size, Theme};

/// A curve to draw.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Samples, oldest first.
    pub samples: Vec<CurveSample>,
    /// The time axis spans at least this, s (the protocol's spray time).
    pub span_s: f64,
    /// Skin target, °C.
    pub target: Option<f64>,
    /// Skin floor, °C.
    pub floor: Option<f64>,
    /// Text size, px.
    pub text: f32,
}

/// Skin colour.
const SKIN: Color = Color::from_rgb(1.0, 0.55, 0.2);

impl canvas::Program<Message> for Chart {
    type State = ();

    fn draw(
        &self,
        _state: &(),
        renderer: &Renderer,
        _theme: &Theme,
        bounds: Rectangle,
        _cursor: mouse::Cursor,
    ) -> Vec<canvas::Geometry> {
        let mut f = Frame::new(renderer, bounds.size());
        let left = self.text * 3.0;
        let bottom = self.text * 1.6;
        let top = self.text * 0.8;
        let plot = Size::new(
            (bounds.width - left - 8.0).max(10.0),
            (bounds.height - bottom - top).max(10.0),
        );
        let t_max = self
            .samples
            .last()
            .map_or(self.span_s, |s| s.t_s.max(self.span_s))
            .max(1.0)
            .ceil();
        let (lo, hi) = (0.0_f64, 40.0_f64);
        let x = |t: f64| left + (t / t_max) as f32 * plot.width;
        let y = |c: f64| top + ((hi - c.clamp(lo, hi)) / (hi - lo)) as f32 * plot.height;
        let label = |f: &mut Frame, s: String, at: Point, colour: Color| {
            f.fill_text(canvas::Text {
                content: s,
                position: at,
                color: colour,
                size: self.text.into(),
                ..canvas::Text::default()
            });
        };
        // Axes and grid every 10 °C.
        for c in [0.0, 10.0, 20.0, 30.0, 40.0] {
            f.stroke(
                &Path::line(Point::new(left, y(c)), Point::new(left + plot.width, y(c))),
                Stroke::default()
                    .with_color(Color { a: 0.25, ..GREY })
                    .with_width(1.0),
            );
            label(
                &mut f,
                format!("{c:.0}°"),
                Point::new(2.0, y(c) - self.text / 2.0),
                GREY,
            );
        }
        label(
            &mut f,
            format!("0 s … {t_max:.0} s"),
            Point::new(left, top + plot.height + 4.0),
            GREY,
        );
        let hline = |f: &mut Frame, c: f64, colour: Color| {
            f.stroke(
                &Path::line(Point::new(left, y(c)), Point::new(left + plot.width, y(c))),
                Stroke::default().with_color(colour).with_width(2.0),
            );
        };
        if let Some(t) = self.target {
            hline(&mut f, t, GREEN);
        }
        if let Some(fl) = self.floor {
            hline(&mut f, fl, RED);
        }
        let series = |f: &mut Frame, pick: fn(&CurveSample) -> f64, colour: Color| {
            let path = Path::new(|b| {
                let mut pen_down = false;
                for s in &self.samples {
                    let v = pick(s);
                    if !v.is_finite() {
                        pen_down = false;
                        continue;
                    }
                    let p = Point::new(x(s.t_s), y(v));
                    if pen_down {
                        b.line_to(p);
                    } else {
                        b.move_to(p);
                        pen_down = true;
                    }
                }
            });
            f.stroke(&path, Stroke::default().with_color(colour).with_width(3.0));
        };
        series(&mut f, |s| s.mist_c, CYAN);
        series(&mut f, |s| s.skin_c, SKIN);
        // Legend, top right.
        let lx = left + plot.width - self.text * 9.0;
        label(&mut f, "— skin".into(), Point::new(lx, 6.0), SKIN);
        label(
            &mut f,
            "— mist".into(),
            Point::new(lx, 6.0 + self.text * 1.2),
            CYAN,
        );
        label(
            &mut f,
            "— target".into(),
            Point::new(lx + self.text * 4.5, 6.0),
            GREEN,
        );
        label(
            &mut f,
            "— floor".into(),
            Point::new(lx + self.text * 4.5, 6.0 + self.text * 1.2),
            RED,
        );
        vec![f.into_geometry()]
    }
}
