//! PNG charts, drawn with plotters' pure-Rust bitmap backend and the bundled
//! DejaVu Sans font (no fontconfig or freetype on the machine needed).
//!
//! * `score_distribution.png`: every host's anomaly score, benign and attack
//!   hosts on separate rows, with the decision threshold.
//! * `fanout.png`: distinct destination IPs vs distinct destination ports per
//!   host (log axes); scanners sit far up or far right.
//! * `flagged_features.png`: one panel per feature: the benign hosts' values
//!   as a grey cloud with their median and 99th percentile, the flagged
//!   hosts as red points labelled with their IP.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::detect::{Detection, HostResult};
use crate::output::report::fmt_value;
use crate::util::stats::quantile;

static FONT: &[u8] = include_bytes!("assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();
/// The registered font family name.
pub(crate) const FAMILY: &str = "sans-serif";

const BENIGN: RGBColor = RGBColor(150, 150, 150);
const ATTACK: RGBColor = RGBColor(200, 30, 30);
const FLAGGED: RGBColor = RGBColor(240, 140, 0);
const UNLABELLED: RGBColor = RGBColor(60, 110, 190);

fn register() {
    REGISTER.call_once(|| {
        // The bundled font is valid; a failure here is a build defect.
        register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("bundled font is invalid"));
        register_font(FAMILY, FontStyle::Bold, FONT)
            .unwrap_or_else(|_| panic!("bundled font is invalid"));
    });
}

/// Deterministic jitter in [-0.5, 0.5) from an index (SplitMix64).
fn jitter(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

/// Wraps a plotters error.
pub(crate) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing chart: {e:?}")
}

/// [`draw_png`] for other modules' charts.
pub(crate) fn draw_png_pub(
    path: &Path,
    size: (u32, u32),
    f: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    draw_png(path, size, f)
}

/// Draws into memory, encodes the PNG and writes it whole (a temporary
/// sibling renamed into place).
fn draw_png(
    path: &Path,
    size: (u32, u32),
    f: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    register();
    let (width, height) = size;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    let drawn = (|| -> Result<()> {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        f(&root)?;
        root.present().map_err(err)?;
        Ok(())
    })();
    drawn.map_err(|e| e.context(format!("drawing {}", path.display())))?;
    let png = encode_png(&pixels, width, height)
        .map_err(|e| anyhow!("encoding {}: {e}", path.display()))?;
    crate::output::write::write_file(path, &png)
}

/// RGB pixels as a PNG: one filter for every row (Paeth) and fast
/// compression. On latmove's charts this writes files within a few percent
/// of the size the previous encoder gave (fast compression, the best of
/// five filters tried on every row) in a fraction of its time.
fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::FilterType::Paeth);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::NonAdaptive);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

fn class_of(h: &HostResult) -> (&'static str, RGBColor) {
    match h.is_attack {
        Some(true) => ("attack", ATTACK),
        Some(false) => ("benign", BENIGN),
        None => ("unlabelled", UNLABELLED),
    }
}

/// Chart (a): score distribution by class, with the threshold.
pub(crate) fn score_distribution(d: &Detection, path: &Path) -> Result<()> {
    let labelled = d.metrics.is_some();
    let rows: Vec<(&str, RGBColor)> = if labelled {
        vec![("benign", BENIGN), ("attack", ATTACK)]
    } else {
        vec![("unlabelled", UNLABELLED)]
    };
    let lo = d
        .hosts
        .iter()
        .map(|h| h.score)
        .fold(f64::INFINITY, f64::min)
        .min(d.threshold);
    let hi = d
        .hosts
        .iter()
        .map(|h| h.score)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(d.threshold);
    let pad = ((hi - lo) * 0.05).max(0.01);
    let (x0, x1) = ((lo - pad).max(0.0), hi + pad + (hi - lo) * 0.18);
    draw_png(path, (1100, 520), |root| {
        let flagged = d.flagged().count();
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Anomaly score per host ({} hosts, {} flagged above the threshold)",
                    d.hosts.len(),
                    flagged
                ),
                (FAMILY, 22),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(110)
            .build_cartesian_2d(x0..x1, 0f64..rows.len() as f64)
            .map_err(err)?;
        let counts: Vec<usize> = rows
            .iter()
            .map(|(name, _)| d.hosts.iter().filter(|h| class_of(h).0 == *name).count())
            .collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.len() * 2 + 1)
            .y_label_formatter(&|y| {
                let i = (y - 0.5).round();
                if (y - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < rows.len() {
                    format!("{} ({})", rows[i as usize].0, counts[i as usize])
                } else {
                    String::new()
                }
            })
            .x_desc("anomaly score s(x) = 2^(-E[h(x)]/c(psi))   (higher = easier to isolate = more unusual)")
            .label_style((FAMILY, 15))
            .draw()
            .map_err(err)?;
        for (row, (name, color)) in rows.iter().enumerate() {
            let pts: Vec<(f64, f64)> = d
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| class_of(h).0 == *name)
                .map(|(i, h)| (h.score, row as f64 + 0.5 + 0.7 * jitter(i as u64)))
                .collect();
            let radius = if *name == "attack" { 6 } else { 3 };
            chart
                .draw_series(
                    pts.iter()
                        .map(|&p| Circle::new(p, radius, color.mix(0.7).filled())),
                )
                .map_err(err)?;
        }
        mark_threshold_and_hosts(&mut chart, d, &rows, (x0, x1))
    })
}

/// The threshold line with its caption, and the names of every attack host
/// (up to 6) and the top flagged benign hosts, on the score chart.
fn mark_threshold_and_hosts<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    d: &Detection,
    rows: &[(&str, RGBColor)],
    (x0, x1): (f64, f64),
) -> Result<()> {
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(d.threshold, 0.0), (d.threshold, rows.len() as f64)],
            BLACK.stroke_width(2),
        )))
        .map_err(err)?;
    let right_half = d.threshold > (x0 + x1) / 2.0;
    let label = format!(
        "threshold {:.3}: hosts to the right are flagged ",
        d.threshold
    );
    let style = (FAMILY, 15).into_font().color(&BLACK);
    let anchor = if right_half {
        style.pos(Pos::new(HPos::Right, VPos::Top))
    } else {
        style.pos(Pos::new(HPos::Left, VPos::Top))
    };
    chart
        .draw_series(std::iter::once(Text::new(
            label,
            (d.threshold, rows.len() as f64 - 0.02),
            anchor,
        )))
        .map_err(err)?;
    // Label every attack host (up to 6) and the top flagged benign hosts.
    let mut chosen: Vec<(usize, &HostResult)> = d
        .hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.is_attack == Some(true))
        .take(6)
        .collect();
    chosen.extend(
        d.hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.flagged && h.is_attack != Some(true))
            .take(3),
    );
    for (k, (i, h)) in chosen.iter().enumerate() {
        let row = rows.iter().position(|r| r.0 == class_of(h).0).unwrap_or(0);
        let y = row as f64 + 0.5 + 0.7 * jitter(*i as u64);
        let pos = Pos::new(HPos::Left, VPos::Center);
        let dx = (x1 - x0) * 0.008;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{} (#{})", h.ip, h.rank),
                (h.score + dx, y + 0.07 * (k % 3) as f64 - 0.07),
                (FAMILY, 13).into_font().color(&BLACK).pos(pos),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// The attack and flagged hosts (at most 20) whose names the fan-out chart
/// shows, skipping any whose label would land on one already placed
/// (log-space distance).
fn fanout_labelled<'a>(
    d: &'a Detection,
    xy: &dyn Fn(&HostResult) -> (f64, f64),
    (xmax, ymax): (f64, f64),
) -> Vec<&'a HostResult> {
    let mut placed: Vec<(f64, f64)> = Vec::new();
    let (lx, ly) = (xmax.log10(), ymax.log10());
    let mut chosen = Vec::new();
    for h in d
        .hosts
        .iter()
        .filter(|h| h.flagged || h.is_attack == Some(true))
        .take(20)
    {
        let (x, y) = xy(h);
        let (px, py) = (x.log10() / lx, y.log10() / ly);
        if placed
            .iter()
            .any(|(qx, qy)| (px - qx).abs() < 0.12 && (py - qy).abs() < 0.025)
        {
            continue;
        }
        placed.push((px, py));
        chosen.push(h);
    }
    chosen
}

fn feature_index(d: &Detection, name: &str) -> Option<usize> {
    d.feature_names.iter().position(|n| *n == name)
}

/// Chart (b): fan-out, distinct destination IPs vs ports, log axes.
pub(crate) fn fanout(d: &Detection, path: &Path) -> Result<()> {
    let (Some(fi), Some(fp)) = (
        feature_index(d, "unique_dst_ips"),
        feature_index(d, "unique_dst_ports"),
    ) else {
        return Ok(());
    };
    let xy = |h: &HostResult| (h.features[fi].max(1.0), h.features[fp].max(1.0));
    let xmax = d.hosts.iter().map(|h| xy(h).0).fold(1.0, f64::max) * 5.0;
    let ymax = d.hosts.iter().map(|h| xy(h).1).fold(1.0, f64::max) * 8.0;
    draw_png(path, (1100, 800), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                if d.window_secs.is_some() {
                    "Fan-out per source host in its peak window: who talks to many hosts, or many ports"
                } else {
                    "Fan-out per source host: who talks to many hosts, or many ports"
                },
                (FAMILY, 22),
            )
            .margin(16)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d((1f64..xmax).log_scale(), (1f64..ymax).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("distinct destination IPs (log scale)")
            .y_desc("distinct destination ports (log scale)")
            .label_style((FAMILY, 15))
            .x_label_formatter(&|v| fmt_value(v.round()))
            .y_label_formatter(&|v| fmt_value(v.round()))
            .draw()
            .map_err(err)?;
        let classes: &[(&str, RGBColor)] = &[
            ("benign", BENIGN),
            ("unlabelled", UNLABELLED),
            ("attack", ATTACK),
        ];
        for (name, color) in classes {
            let pts: Vec<(f64, f64)> = d
                .hosts
                .iter()
                .filter(|h| class_of(h).0 == *name)
                .map(xy)
                .collect();
            if pts.is_empty() {
                continue;
            }
            let r = if *name == "attack" { 7 } else { 4 };
            let c = *color;
            chart
                .draw_series(
                    pts.iter()
                        .map(move |&p| Circle::new(p, r, c.mix(0.6).filled())),
                )
                .map_err(err)?
                .label(format!("{name} host ({})", pts.len()))
                .legend(move |(x, y)| Circle::new((x, y), r, c.filled()));
        }
        let flagged: Vec<(f64, f64)> = d.flagged().map(xy).collect();
        chart
            .draw_series(
                flagged
                    .iter()
                    .map(|&p| Circle::new(p, 11, FLAGGED.stroke_width(3))),
            )
            .map_err(err)?
            .label(format!("flagged by latmove ({})", flagged.len()))
            .legend(|(x, y)| Circle::new((x, y), 8, FLAGGED.stroke_width(3)));
        for h in fanout_labelled(d, &xy, (xmax, ymax)) {
            let (x, y) = xy(h);
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{} (#{})", h.ip, h.rank),
                    (x * 1.12, y),
                    (FAMILY, 14)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// Features for chart (c): those that most often explain the top flagged
/// hosts, then the ones farthest from the benign median, up to `max`.
fn chart_features(d: &Detection, flagged: &[&HostResult], max: usize) -> Vec<usize> {
    let nf = d.feature_names.len();
    if nf <= max {
        return (0..nf).collect();
    }
    let mut votes = vec![0usize; nf];
    let mut far = vec![0f64; nf];
    for h in flagged.iter().take(10) {
        for &j in crate::output::report::top_reasons(h).iter().take(3) {
            votes[j] += 1;
        }
        for (f, z) in far.iter_mut().zip(&h.robust_z) {
            *f = f.max(z.abs());
        }
    }
    let mut idx: Vec<usize> = (0..nf).collect();
    idx.sort_by(|&a, &b| {
        votes[b]
            .cmp(&votes[a])
            .then(far[b].total_cmp(&far[a]))
            .then(a.cmp(&b))
    });
    idx.truncate(max);
    idx.sort_unstable();
    idx
}

/// Chart (c): flagged hosts' feature values against the benign hosts.
///
/// Counts are drawn on a log axis (values below 1 at 1), shares on a linear
/// 0-100% axis.
pub(crate) fn flagged_features(d: &Detection, path: &Path) -> Result<()> {
    let reference: Vec<&HostResult> = if d.metrics.is_some() {
        d.hosts
            .iter()
            .filter(|h| h.is_attack == Some(false) && !h.allowed)
            .collect()
    } else {
        d.hosts.iter().filter(|h| !h.allowed).collect()
    };
    let ref_name = if d.metrics.is_some() {
        "benign hosts"
    } else {
        "all hosts"
    };
    // "the benign hosts", but "all hosts".
    let the_ref = if d.metrics.is_some() {
        "the benign hosts"
    } else {
        "all hosts"
    };
    let flagged: Vec<&HostResult> = d.flagged().collect();
    let shown = chart_features(d, &flagged, 8);
    let cols = if shown.len() <= 4 { 2 } else { 4 };
    let rows_n = shown.len().div_ceil(cols);
    let what = if d.window_secs.is_some() {
        "peak-window values"
    } else {
        "values"
    };
    draw_png(
        path,
        (520 * cols as u32, 90 + 400 * rows_n as u32),
        |root| {
            let (title, body) = root.split_vertically(90);
            let line1 = format!(
                "Flagged hosts (red, top {} labelled) against {} (grey): {what}",
                flagged.len().min(5),
                the_ref
            );
            let line2 = format!(
                "line = median, dashed = 99th percentile of {the_ref}; {} of {} features shown: those that set the flagged hosts apart most",
                shown.len(),
                d.feature_names.len()
            );
            title
                .draw(&Text::new(
                    line1,
                    (20, 12),
                    (FAMILY, 20).into_font().color(&BLACK),
                ))
                .map_err(err)?;
            title
                .draw(&Text::new(
                    line2,
                    (20, 46),
                    (FAMILY, 15).into_font().color(&BLACK),
                ))
                .map_err(err)?;
            let panels = body.split_evenly((rows_n, cols));
            for (panel, &j) in panels.iter().zip(&shown) {
                feature_panel(panel, d, j, (&reference, ref_name), &flagged)?;
            }
            Ok(())
        },
    )
}

/// One panel of [`flagged_features`]: feature `j` of the reference hosts
/// (grey, with their median and 99th percentile) and the flagged ones
/// (red, the top five labelled).
fn feature_panel(
    panel: &DrawingArea<BitMapBackend<'_>, Shift>,
    d: &Detection,
    j: usize,
    (reference, ref_name): (&[&HostResult], &str),
    flagged: &[&HostResult],
) -> Result<()> {
    let share = d.feature_names[j].ends_with("_share");
    // Display space: log10 for counts, the raw share for shares.
    let y = |v: f64| {
        if share {
            v.clamp(0.0, 1.0)
        } else {
            v.max(1.0).log10()
        }
    };
    let vals: Vec<f64> = reference.iter().map(|h| h.features[j]).collect();
    let fvals: Vec<f64> = flagged.iter().map(|h| h.features[j]).collect();
    let top = if share {
        1.05
    } else {
        (vals
            .iter()
            .chain(&fvals)
            .copied()
            .fold(1.0, f64::max)
            .log10()
            + 0.4)
            .ceil()
            .max(1.0)
    };
    let mut chart = ChartBuilder::on(panel)
        .caption(d.feature_names[j], (FAMILY, 17))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(62)
        .build_cartesian_2d(0f64..2.35, 0f64..top)
        .map_err(err)?;
    let log_label = |v: &f64| {
        if share {
            format!("{:.0}%", v * 100.0)
        } else if (v - v.round()).abs() < 1e-9 {
            fmt_value(10f64.powf(*v))
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| {
            if (x - 0.5).abs() < 1e-6 {
                format!("{ref_name} ({})", vals.len())
            } else if (x - 1.5).abs() < 1e-6 {
                format!("flagged ({})", fvals.len())
            } else {
                String::new()
            }
        })
        .y_labels(if share { 6 } else { (top as usize) + 1 })
        .y_label_formatter(&log_label)
        .y_desc(if share { "share of flows" } else { "log scale" })
        .label_style((FAMILY, 13))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(vals.iter().enumerate().map(|(i, v)| {
            Circle::new(
                (0.5 + 0.6 * jitter(i as u64 * 31 + j as u64), y(*v)),
                3,
                BENIGN.mix(0.6).filled(),
            )
        }))
        .map_err(err)?;
    reference_lines(&mut chart, &vals, &y)?;
    let px = |i: usize| 1.5 + 0.3 * jitter(i as u64 * 17 + j as u64);
    chart
        .draw_series(
            fvals
                .iter()
                .enumerate()
                .map(|(i, v)| Circle::new((px(i), y(*v)), 5, ATTACK.filled())),
        )
        .map_err(err)?;
    label_flagged(&mut chart, flagged, j, (share, top), (&y, &px))
}

/// The reference hosts' median (a line) and 99th percentile (dashed) on a
/// [`feature_panel`], in display space `y`.
fn reference_lines<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    vals: &[f64],
    y: &dyn Fn(f64) -> f64,
) -> Result<()> {
    if vals.is_empty() {
        return Ok(());
    }
    let med = y(quantile(vals, 0.5));
    let p99 = y(quantile(vals, 0.99));
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, med), (2.0, med)],
            BLACK.stroke_width(1),
        )))
        .map_err(err)?;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, p99), (2.0, p99)],
            8,
            6,
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    Ok(())
}

/// Labels for the top five flagged hosts of a [`feature_panel`], stacked
/// without overlap at the right of the panel, each joined to its point.
fn label_flagged<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    flagged: &[&HostResult],
    j: usize,
    (share, top): (bool, f64),
    (y, px): (&dyn Fn(f64) -> f64, &dyn Fn(usize) -> f64),
) -> Result<()> {
    let gap = top * 0.07;
    let mut tags: Vec<(f64, usize)> = flagged
        .iter()
        .take(5)
        .enumerate()
        .map(|(i, h)| (y(h.features[j]), i))
        .collect();
    tags.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last = f64::NEG_INFINITY;
    for t in tags.iter_mut() {
        t.0 = t.0.max(last + gap);
        last = t.0;
    }
    let overflow = (last - (top - gap / 2.0)).max(0.0);
    for (ty, i) in &tags {
        let h = flagged[*i];
        let label_y = ty - overflow;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(px(*i), y(h.features[j])), (1.68, label_y)],
                BLACK.mix(0.4).stroke_width(1),
            )))
            .map_err(err)?;
        let v = h.features[j];
        let shown_value = if share {
            format!("{:.0}%", v * 100.0)
        } else {
            fmt_value(v)
        };
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{} {}", h.ip, shown_value),
                (1.69, label_y),
                (FAMILY, 12)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// Draws all three charts into `dir`; returns the file names written.
pub(crate) fn draw_all(d: &Detection, dir: &Path) -> Result<Vec<&'static str>> {
    type Chart = fn(&Detection, &Path) -> Result<()>;
    let mut charts: Vec<(&'static str, Chart)> =
        vec![("score_distribution.png", score_distribution)];
    if feature_index(d, "unique_dst_ips").is_some()
        && feature_index(d, "unique_dst_ports").is_some()
    {
        charts.push(("fanout.png", fanout));
    }
    charts.push(("flagged_features.png", flagged_features));
    // Each chart on a thread of its own (each file is written whole, to a
    // temporary name first); the first error in this order is reported.
    std::thread::scope(|s| {
        let drawn: Vec<_> = charts
            .iter()
            .map(|&(name, draw)| {
                crate::util::threads::spawn_or_run(s, move || draw(d, &dir.join(name)))
            })
            .collect();
        drawn
            .into_iter()
            .map(|h| h.join())
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(charts.iter().map(|c| c.0).collect())
}
