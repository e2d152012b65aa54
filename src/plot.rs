//! The curves as a figure file: PSNR against step for every method (one-step methods as
//! horizontal baselines), the training loss on a log scale under it, and a multi-resolution
//! method's per-level PSNRs, drawn with plotters in the font egui ships. The window's *Export
//! view* on the curves tab and `inrlab run` (curves.png) both draw a [`CurvesFigure`].

use anyhow::Context;
use image::RgbImage;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;

/// The family name the bundled font is registered under (plotters looks fonts up by name).
const FAMILY: &str = "inrlab";

/// One line: (step, value) points in step order.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    pub name: String,
    pub color: [u8; 3],
    pub points: Vec<(f64, f64)>,
    /// Dashed (a rollout beside its teacher-forced curve).
    pub dashed: bool,
}

/// What the figure shows; empty panels are left out.
#[derive(Clone, Debug, Default)]
pub struct CurvesFigure {
    pub title: String,
    pub subtitle: String,
    pub psnr: Vec<Curve>,
    pub loss: Vec<Curve>,
    /// Per level of one multi-resolution method, with its heading ("wavelet: per level").
    pub levels: Option<(String, Vec<Curve>)>,
}

/// Registers the bundled font with plotters once. plotters keeps registered fonts in a table of
/// its own for the life of the process; registering the same bytes again is harmless.
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, crate::sheet::FONT).is_ok()
    });
    anyhow::ensure!(ok, "the bundled font cannot be used for plots");
    Ok(())
}

impl CurvesFigure {
    pub fn is_empty(&self) -> bool {
        self.psnr.iter().all(|c| c.points.is_empty())
            && self.loss.iter().all(|c| c.points.is_empty())
    }

    /// Renders the figure `width` pixels wide (each panel about 0.45 of that high).
    pub fn render(&self, width: u32) -> anyhow::Result<RgbImage> {
        register_font()?;
        let panels = 1
            + usize::from(self.loss.iter().any(|c| !c.points.is_empty()))
            + usize::from(self.levels.is_some());
        let panel_height = (width as f64 * 0.42) as u32;
        let height = HEADER_PX + panel_height * panels as u32;
        page(width, height, &self.title, &self.subtitle, |body| {
            let areas = body.split_evenly((panels, 1));
            let mut areas = areas.iter();
            let x_max = self.x_max();
            panel(
                areas.next().expect("one panel at least"),
                "PSNR against step",
                "PSNR (dB)",
                &self.psnr,
                x_max,
                false,
            )?;
            if self.loss.iter().any(|c| !c.points.is_empty()) {
                let area = areas.next().expect("counted");
                panel(
                    area,
                    "training loss (log scale)",
                    "loss",
                    &self.loss,
                    x_max,
                    true,
                )?;
            }
            if let Some((heading, curves)) = &self.levels {
                let area = areas.next().expect("counted");
                panel(area, heading, "PSNR (dB)", curves, x_max, false)?;
            }
            Ok(())
        })
    }

    fn x_max(&self) -> f64 {
        self.psnr
            .iter()
            .chain(&self.loss)
            .flat_map(|c| c.points.iter().map(|p| p.0))
            .fold(1.0, f64::max)
    }
}

/// Radially averaged power spectra (log power against radius) with the training grid's Nyquist
/// radius marked: seed 004's check of whether a finer rendering created detail.
#[derive(Clone, Debug, Default)]
pub struct SpectrumFigure {
    pub title: String,
    pub subtitle: String,
    pub curves: Vec<Curve>,
    /// Radius of the training grid's Nyquist frequency, drawn as a vertical line.
    pub nyquist: f64,
}

impl SpectrumFigure {
    pub fn render(&self, width: u32) -> anyhow::Result<RgbImage> {
        register_font()?;
        let height = HEADER_PX + (width as f64 * 0.45) as u32;
        page(width, height, &self.title, &self.subtitle, |body| {
            let x_max = (self.curves.iter())
                .flat_map(|c| c.points.iter().map(|p| p.0))
                .fold(2.0, f64::max);
            let (low, high) = (self.curves.iter())
                .flat_map(|c| c.points.iter().map(|p| p.1))
                .filter(|v| v.is_finite() && *v > 0.0)
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
            let mut curves = self.curves.clone();
            if low < high {
                curves.push(Curve {
                    name: format!("training Nyquist (r = {})", self.nyquist),
                    color: [120, 120, 120],
                    points: vec![(self.nyquist, low), (self.nyquist, high)],
                    dashed: true,
                });
            }
            panel_over(
                body,
                "radially averaged power of the grey image",
                Some("radius (cycles per image)"),
                "power",
                &curves,
                x_max,
                true,
            )
        })
    }
}

/// Height of a figure's title and subtitle.
const HEADER_PX: u32 = 56;

/// A white `width`×`height` figure with its title and subtitle, the rest drawn by `body`.
fn page(
    width: u32,
    height: u32,
    title: &str,
    subtitle: &str,
    body: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<RgbImage> {
    let mut buffer = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let (top, rest) = root.split_vertically(HEADER_PX);
        top.draw_text(title, &(FAMILY, 22).into_font().color(&BLACK), (16, 8))
            .map_err(plot_error)?;
        let dim = RGBColor(95, 100, 110);
        top.draw_text(subtitle, &(FAMILY, 14).into_font().color(&dim), (16, 34))
            .map_err(plot_error)?;
        body(&rest)?;
        root.present().map_err(plot_error)?;
    }
    RgbImage::from_raw(width, height, buffer).context("plot buffer has the wrong size")
}

fn plot_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the plot: {error:?}")
}

/// One panel: the curves over steps 1…x_max (on a log scale past [`LOG_STEPS_FROM`] steps, so a
/// 10-step reservoir run and a 5000-step training run both show); a curve of one point is a
/// horizontal baseline.
fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    y_label: &str,
    curves: &[Curve],
    x_max: f64,
    log_y: bool,
) -> anyhow::Result<()> {
    panel_over(area, caption, None, y_label, curves, x_max, log_y)
}

/// [`panel`] over another x axis than steps (`x_desc`, linear from 1) when given.
fn panel_over(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    x_desc: Option<&str>,
    y_label: &str,
    curves: &[Curve],
    x_max: f64,
    log_y: bool,
) -> anyhow::Result<()> {
    let values: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && (!log_y || *v > 0.0))
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let (mut low, mut high) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if log_y {
        low = low.max(1e-12) * 0.8;
        high *= 1.25;
    } else {
        let pad = ((high - low) * 0.06).max(0.5);
        low -= pad;
        high += pad;
    }
    let log_x = x_desc.is_none() && x_max > LOG_STEPS_FROM;
    // A range of a few dB gets a decimal, so its ticks do not repeat one label.
    let y_decimals = if high - low < 6.0 { 1 } else { 0 };
    let x_range = 1.0..x_max.max(2.0);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FAMILY, 16))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(64);
    let x_desc = match x_desc {
        Some(desc) => desc,
        None if log_x => "step (log scale)",
        None => "step",
    };
    // Four coordinate systems (x and y each linear or log), one drawing routine.
    match (log_x, log_y) {
        (false, false) => {
            let mut chart = (builder.build_cartesian_2d(x_range, low..high)).map_err(plot_error)?;
            draw(
                &mut chart, curves, x_desc, y_label, false, x_max, y_decimals,
            )
        }
        (true, false) => {
            let mut chart =
                (builder.build_cartesian_2d(x_range.log_scale(), low..high)).map_err(plot_error)?;
            draw(
                &mut chart, curves, x_desc, y_label, false, x_max, y_decimals,
            )
        }
        (false, true) => {
            let mut chart = (builder.build_cartesian_2d(x_range, (low..high).log_scale()))
                .map_err(plot_error)?;
            draw(&mut chart, curves, x_desc, y_label, true, x_max, y_decimals)
        }
        (true, true) => {
            let mut chart = (builder
                .build_cartesian_2d(x_range.log_scale(), (low..high).log_scale()))
            .map_err(plot_error)?;
            draw(&mut chart, curves, x_desc, y_label, true, x_max, y_decimals)
        }
    }
}

/// Runs with more steps than this get a log-scaled step axis.
const LOG_STEPS_FROM: f64 = 100.0;

/// The mesh, the curves and their legend on a chart of either scale.
fn draw<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    curves: &[Curve],
    x_desc: &str,
    y_label: &str,
    log_y: bool,
    x_max: f64,
    y_decimals: usize,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let y_format = |v: &f64| {
        if log_y {
            format!("{v:.0e}")
        } else {
            format!("{v:.y_decimals$}")
        }
    };
    // Steps are whole, but a short axis puts ticks between them.
    let x_format = |v: &f64| {
        if (v - v.round()).abs() < 1e-6 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_label)
        .label_style((FAMILY, 13))
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .bold_line_style(RGBColor(210, 210, 210))
        .light_line_style(RGBColor(242, 242, 242))
        .draw()
        .map_err(plot_error)?;
    for curve in curves {
        let [r, g, b] = curve.color;
        let color = RGBColor(r, g, b).stroke_width(if curve.dashed { 1 } else { 2 });
        let finite: Vec<(f64, f64)> = (curve.points.iter().copied())
            .filter(|p| p.0 >= 1.0 && p.1.is_finite() && (!log_y || p.1 > 0.0))
            .collect();
        let line = match finite.as_slice() {
            [(_, v)] => vec![(1.0, *v), (x_max.max(2.0), *v)],
            _ => finite,
        };
        let series = if curve.dashed {
            chart.draw_series(DashedLineSeries::new(line, 6, 4, color))
        } else {
            chart.draw_series(LineSeries::new(line, color))
        };
        series
            .map_err(plot_error)?
            .label(curve.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 13).into_font())
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .position(if log_y {
            SeriesLabelPosition::UpperRight
        } else {
            SeriesLabelPosition::LowerRight
        })
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_draw_lines_in_their_colours_with_text() {
        let figure = CurvesFigure {
            title: "curves · test".into(),
            subtitle: "chelsea 64² · cpu".into(),
            psnr: vec![
                Curve {
                    name: "fourier-mlp".into(),
                    color: [220, 40, 40],
                    points: (1..=100)
                        .map(|s| (s as f64, 10.0 + (s as f64).ln()))
                        .collect(),
                    dashed: false,
                },
                Curve {
                    name: "fourier-ridge".into(),
                    color: [40, 40, 220],
                    points: vec![(1.0, 14.0)],
                    dashed: false,
                },
            ],
            loss: vec![Curve {
                name: "fourier-mlp".into(),
                color: [220, 40, 40],
                points: (1..=100).map(|s| (s as f64, 1.0 / s as f64)).collect(),
                dashed: false,
            }],
            levels: None,
        };
        let image = figure.render(800).unwrap();
        assert_eq!(image.width(), 800);
        let count = |rgb: [u8; 3]| image.pixels().filter(|p| p.0 == rgb).count();
        // Two plots' worth of the red method, the blue baseline across the first.
        assert!(count([220, 40, 40]) > 600, "{}", count([220, 40, 40]));
        assert!(count([40, 40, 220]) > 300, "{}", count([40, 40, 220]));
        // Text and axes: dark pixels that are not the curves.
        let dark = image
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c < 90))
            .count();
        assert!(dark > 2000, "{dark}");
    }
}
