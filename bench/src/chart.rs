//! The SVG chart: throughput and p99 latency per mode.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor;

use crate::ModeResult;

const BAR: RGBColor = RGBColor(0x3b, 0x6e, 0xa8);
const OURS: RGBColor = RGBColor(0xd9, 0x6c, 0x1e);

/// Draws two bar panels (requests/s with the ratio to `none` over each bar, and p99
/// latency) into an SVG file. tower-bearer's modes are drawn in a second colour.
///
/// # Errors
/// When the file cannot be written.
pub fn draw(path: &Path, results: &[ModeResult], subtitle: &str) -> Result<(), String> {
    let root = SVGBackend::new(path, (960, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (title, body) = root.split_vertically(60);
    let centred = |size| {
        ("sans-serif", size)
            .into_font()
            .color(&BLACK)
            .pos(text_anchor::Pos::new(
                text_anchor::HPos::Center,
                text_anchor::VPos::Top,
            ))
    };
    let middle = i32::try_from(title.dim_in_pixel().0 / 2).unwrap_or(0);
    title
        .draw_text(
            "tower-bearer and its peers: GET / behind each mode",
            &centred(20),
            (middle, 10),
        )
        .map_err(|e| e.to_string())?;
    title
        .draw_text(subtitle, &centred(13), (middle, 38))
        .map_err(|e| e.to_string())?;
    let (top, bottom) = body.split_vertically(356);
    panel(
        &top,
        results,
        "throughput (requests/s, median of rounds; ratio to none above the bar)",
        "requests/s",
        |result| result.rps,
        |result| format!("{:.0} ({:.2}×)", result.rps, result.ratio_vs_none),
    )?;
    panel(
        &bottom,
        results,
        "p99 latency (ms, median of rounds)",
        "p99 ms",
        |result| result.p99_ms,
        |result| format!("{:.2} ms", result.p99_ms),
    )?;
    root.present().map_err(|e| e.to_string())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    results: &[ModeResult],
    caption: &str,
    y_desc: &str,
    value: impl Fn(&ModeResult) -> f64,
    label: impl Fn(&ModeResult) -> String,
) -> Result<(), String> {
    let error = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let count = results.len().max(1);
    let top = results
        .iter()
        .map(&value)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.18;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..count as f64, 0.0..top)
        .map_err(error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_desc)
        .y_label_style(("sans-serif", 12))
        .y_label_formatter(&|v| {
            if top > 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        .draw()
        .map_err(error)?;
    for (index, result) in results.iter().enumerate() {
        let x = index as f64;
        let height = value(result);
        let colour = if result.mode.starts_with("bearer") {
            OURS
        } else {
            BAR
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x + 0.15, 0.0), (x + 0.85, height)],
                colour.filled(),
            )))
            .map_err(error)?;
        let centred = |size| {
            ("sans-serif", size)
                .into_font()
                .color(&BLACK)
                .pos(text_anchor::Pos::new(
                    text_anchor::HPos::Center,
                    text_anchor::VPos::Bottom,
                ))
        };
        chart
            .draw_series(std::iter::once(Text::new(
                label(result),
                (x + 0.5, height + top * 0.01),
                centred(12),
            )))
            .map_err(error)?;
        chart
            .draw_series(std::iter::once(Text::new(
                result.mode.clone(),
                (x + 0.5, -top * 0.02),
                ("sans-serif", 13)
                    .into_font()
                    .color(&BLACK)
                    .pos(text_anchor::Pos::new(
                        text_anchor::HPos::Center,
                        text_anchor::VPos::Top,
                    )),
            )))
            .map_err(error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_with_every_mode() {
        let results: Vec<ModeResult> = ["none", "bearer-memory"]
            .iter()
            .enumerate()
            .map(|(i, mode)| ModeResult {
                mode: (*mode).to_owned(),
                rps: 1000.0 * (i + 1) as f64,
                p50_ms: 0.5,
                p99_ms: 1.5,
                ratio_vs_none: 1.0,
                peak_rss_kib: 1000,
                redis_commands_per_request: None,
                redis_commands: Default::default(),
            })
            .collect();
        let path = std::env::temp_dir().join(format!("bench-chart-{}.svg", std::process::id()));
        draw(&path, &results, "test").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("bearer-memory"));
        assert!(svg.contains("(1.00×)"));
    }
}
