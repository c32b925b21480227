//! The plots of `bench digest`, as SVG files beside the report: quality against seconds per
//! paper (one labelled point per model), and prefill and decode tokens/s per model.

use std::path::Path;

use plotters::prelude::*;

use super::report::BenchReport;

/// The plot of quality against seconds per paper.
pub const QUALITY_PLOT: &str = "quality-vs-seconds.svg";
/// The plot of tokens per second per model.
pub const SPEED_PLOT: &str = "tokens-per-second.svg";

/// Writes the plots under `out`; returns their file names (relative to `out`). Models without
/// the values a plot needs are left out of it; a plot with no model at all is not written.
pub fn write_plots(report: &BenchReport, out: &Path) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    let points: Vec<(String, f64, f64)> = report
        .models
        .iter()
        .filter_map(|r| Some((r.name.clone(), r.seconds_per_paper?, r.quality?)))
        .collect();
    if !points.is_empty() {
        quality_plot(&out.join(QUALITY_PLOT), &points)
            .map_err(|e| format!("{QUALITY_PLOT}: {e}"))?;
        written.push(QUALITY_PLOT.to_string());
    }
    let speeds: Vec<(String, f64, f64)> = report
        .models
        .iter()
        .filter_map(|r| {
            Some((
                r.name.clone(),
                r.prefill_tok_s.unwrap_or(0.0),
                r.decode_tok_s?,
            ))
        })
        .collect();
    if !speeds.is_empty() {
        speed_plot(&out.join(SPEED_PLOT), &speeds).map_err(|e| format!("{SPEED_PLOT}: {e}"))?;
        written.push(SPEED_PLOT.to_string());
    }
    Ok(written)
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

fn quality_plot(path: &Path, points: &[(String, f64, f64)]) -> PlotResult {
    let root = SVGBackend::new(path, (820, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_secs = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.25;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Quality against seconds per paper (up and left is better)",
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max_secs, 0f64..1.1f64)?;
    chart
        .configure_mesh()
        .x_desc("seconds per paper")
        .y_desc("quality (well-formed x grounding x fidelity)")
        .draw()?;
    for (index, (name, secs, quality)) in points.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        // The label beside the point, alternately above and below so near points stay legible.
        let label_y = if index % 2 == 0 { -18 } else { 8 };
        let point = EmptyElement::at((*secs, *quality))
            + Circle::new((0, 0), 6, color.filled())
            + Text::new(
                name.clone(),
                (9, label_y),
                ("sans-serif", 14).into_font().color(&BLACK),
            );
        chart.draw_series(std::iter::once(point))?;
    }
    root.present()?;
    Ok(())
}

fn speed_plot(path: &Path, speeds: &[(String, f64, f64)]) -> PlotResult {
    let root = SVGBackend::new(path, (980, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(490);
    bars(&left, "Prefill tokens/s", speeds, |s| s.1, &BLUE)?;
    bars(&right, "Decode tokens/s", speeds, |s| s.2, &RED)?;
    root.present()?;
    Ok(())
}

fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    speeds: &[(String, f64, f64)],
    value: fn(&(String, f64, f64)) -> f64,
    color: &RGBColor,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let n = speeds.len() as u32;
    let top = speeds.iter().map(value).fold(0.0, f64::max).max(1.0) * 1.15;
    let names: Vec<String> = speeds.iter().map(|s| s.0.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(60)
        .y_label_area_size(55)
        .build_cartesian_2d((0u32..n.saturating_sub(1)).into_segmented(), 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(speeds.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .y_desc("tokens/s")
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(color.filled())
            .margin(12)
            .data(speeds.iter().enumerate().map(|(i, s)| (i as u32, value(s)))),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{Machine, ModelRow, RunSettings};
    use crate::config::Settings;

    fn row(name: &str, secs: f64, quality: f64, decode: f64) -> ModelRow {
        ModelRow {
            name: name.to_string(),
            seconds_per_paper: Some(secs),
            quality: Some(quality),
            prefill_tok_s: Some(decode * 8.0),
            decode_tok_s: Some(decode),
            ..ModelRow::default()
        }
    }

    #[test]
    fn plots_show_every_model_that_has_values() {
        let dir = tempfile::tempdir().unwrap();
        let report = BenchReport::new(
            vec![
                row("qwen-small", 95.0, 0.97, 11.5),
                row("smollm", 20.0, 0.41, 80.0),
                ModelRow::failed("broken", None, "no such file".to_string()),
            ],
            vec![],
            Machine::detect("cpu"),
            RunSettings::from_settings(&Settings::default()),
            String::new(),
        );
        let files = write_plots(&report, dir.path()).unwrap();
        assert_eq!(files, [QUALITY_PLOT, SPEED_PLOT]);
        let quality = std::fs::read_to_string(dir.path().join(QUALITY_PLOT)).unwrap();
        assert!(quality.starts_with("<svg"), "{}", &quality[..80]);
        assert!(quality.contains("qwen-small") && quality.contains("smollm"));
        assert!(!quality.contains("broken"));
        assert_eq!(quality.matches("<circle").count(), 2);
        let speed = std::fs::read_to_string(dir.path().join(SPEED_PLOT)).unwrap();
        assert!(speed.contains("Decode tokens/s") && speed.contains("qwen-small"));
        // Two bars per model (prefill and decode), drawn as rectangles.
        assert!(speed.matches("<rect").count() >= 4, "{speed}");
    }

    #[test]
    fn no_plot_without_values() {
        let dir = tempfile::tempdir().unwrap();
        let report = BenchReport::new(
            vec![ModelRow::failed("broken", None, "x".to_string())],
            vec![],
            Machine::detect("cpu"),
            RunSettings::from_settings(&Settings::default()),
            String::new(),
        );
        assert!(write_plots(&report, dir.path()).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
