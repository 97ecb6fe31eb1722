//! Reports of a session recorded by the demo (`coldsprayctl --json sessions show 1`, kept in
//! testdata/): the SVG is parsed for its words and curves, the PNG decoded for its size.

use super::text::{MIST_LABEL, SKIN_LABEL, X_AXIS, Y_AXIS};
use super::*;
use serde_json::Value;

fn recorded() -> SessionReport {
    let v: Value =
        serde_json::from_str(include_str!("testdata/session-1.json")).expect("fixture parses");
    let s = &v["session"];
    let f = |k: &str| s[k].as_f64();
    let u = |k: &str| s[k].as_u64();
    let t = |k: &str| s[k].as_str().unwrap_or_default().to_string();
    let session = SessionInfo {
        id: u("id").unwrap_or_default(),
        protocol: t("protocol"),
        goal: t("goal"),
        cause: t("cause"),
        started_unix_ms: s["started_unix_ms"].as_i64().unwrap_or_default(),
        ended_unix_ms: s["ended_unix_ms"].as_i64(),
        duration_s: f("duration_s"),
        outcome: t("outcome"),
        completed: s["completed"].as_bool().unwrap_or_default(),
        late: s["late"].as_bool().unwrap_or_default(),
        laser_to_spray_ms: f("laser_to_spray_ms"),
        skin_target_c: f("skin_target_c"),
        skin_floor_c: f("skin_floor_c").unwrap_or_default(),
        peak_skin_c: f("peak_skin_c"),
        min_skin_c: f("min_skin_c"),
        time_to_target_ms: u("time_to_target_ms"),
        above_40_ms: u("above_40_ms"),
        spray_ms: u("spray_ms").unwrap_or_default(),
        ended_by_alarm: s["ended_by_alarm"].as_str().map(String::from),
    };
    let n = |p: &Value, k: &str| p[k].as_f64().unwrap_or(f64::NAN);
    let curve = v["curve"]
        .as_array()
        .expect("a curve")
        .iter()
        .map(|p| {
            (
                p["t_ms"].as_u64().unwrap_or_default() as u32,
                n(p, "mist_c"),
                n(p, "skin_c"),
                n(p, "reservoir_c"),
                n(p, "pressure_bar"),
                p["pump"].as_bool().unwrap_or_default(),
                p["valve"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    SessionReport {
        session,
        curve,
        unit: "serial CS-TEST-7, site Test clinic · coldsprayd on the simulated unit".into(),
    }
}

fn svg_of(r: &SessionReport) -> String {
    String::from_utf8(render(r, Format::Svg, DEFAULT_SIZE).expect("renders")).expect("UTF-8")
}

/// Every text of the SVG, whitespace-trimmed.
fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect()
}

/// Number of points of the polylines drawn in `colour`.
fn points_in(doc: &roxmltree::Document, colour: &str) -> usize {
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(colour))
        .map(|n| {
            n.attribute("points")
                .unwrap_or_default()
                .split_whitespace()
                .count()
        })
        .sum()
}

#[test]
fn the_svg_of_a_recorded_session_holds_its_curves_axes_legend_and_verdict() {
    let r = recorded();
    let svg = svg_of(&r);
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    let all = texts(&doc);
    let has = |needle: &str| all.iter().any(|t| t.contains(needle));
    for needle in [
        "Cooling treatment report — session 1",
        "Protocol co2_fractional",
        "serial CS-TEST-7",
        "Outcome: COMPLETED — the skin reached the target temperature",
        "Laser stop → spray start: 14 ms (on time)",
        "Skin reached the target (26.0 °C) after 1.1 s",
        SKIN_LABEL,
        MIST_LABEL,
        X_AXIS,
        Y_AXIS,
        "Target skin temperature (26.0 °C)",
        "Skin floor, the safety limit (10.0 °C)",
        "Laser stopped",
        "Spray started",
    ] {
        assert!(has(needle), "no text `{needle}` in {all:?}");
    }
    let skin_points = r.curve.iter().filter(|p| p.2.is_finite()).count();
    let mist_points = r.curve.iter().filter(|p| p.1.is_finite()).count();
    assert!(skin_points > 50, "the fixture has a curve");
    // Every reading is a point of the skin line, plus the two of its legend sample.
    assert_eq!(
        points_in(&doc, "#C81E1E"),
        skin_points + 2,
        "the skin curve"
    );
    // The mist colour also draws the spray markers (two points each).
    assert!(points_in(&doc, "#145AC8") >= mist_points, "the mist curve");
}

#[test]
fn the_png_decodes_at_the_requested_size_with_the_skin_curve_in_it() {
    let r = recorded();
    let bytes = render(&r, Format::Png, (800, 480)).expect("renders");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("one frame");
    assert_eq!((info.width, info.height), (800, 480));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let skin_red = pixels
        .chunks(3)
        .filter(|p| p[0] > 180 && p[1] < 60 && p[2] < 60)
        .count();
    assert!(skin_red > 200, "only {skin_red} skin-red pixels");
}

#[test]
fn a_session_without_a_curve_says_so_instead_of_drawing_nothing() {
    let mut r = recorded();
    r.curve.clear();
    let svg = svg_of(&r);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed");
    assert!(texts(&doc)
        .iter()
        .any(|t| t == "No curve was recorded for this session"));
}

#[test]
fn the_format_comes_from_the_file_name() {
    assert_eq!(
        Format::from_path(Path::new("a/b.SVG")).ok(),
        Some(Format::Svg)
    );
    assert_eq!(
        Format::from_path(Path::new("r.png")).ok(),
        Some(Format::Png)
    );
    assert!(matches!(
        Format::from_path(Path::new("report.pdf")),
        Err(ReportError::UnknownFormat(_))
    ));
}
