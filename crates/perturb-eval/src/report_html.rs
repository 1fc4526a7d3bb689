//! The evaluation report as one self-contained HTML page: inline CSS and inline SVG, no
//! scripts and nothing fetched, so the file can be mailed, archived or opened offline.
//!
//! Output is a pure function of the data (no clocks, no hash-map order), so reports of the
//! same results diff cleanly. Every coordinate goes through [`P`], which turns a non-finite
//! number into 0 rather than writing `NaN` into an attribute that browsers would reject.

use std::fmt::{self, Write};

/// Everything the HTML report shows. Models appear in the order given.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    pub title: String,
    /// Short paragraphs shown at the top (plain text; escape it).
    pub intro: Vec<String>,
    pub tasks: Vec<TaskSection>,
    /// Efficiency table: one row per model.
    pub efficiency: Vec<EfficiencyRow>,
    /// Top attention genes for a few perturbations.
    pub attention: Vec<AttentionTop>,
    /// Plain tables shown after the attention (plain text cells; escaped).
    pub tables: Vec<TextTable>,
    /// Notes at the end (plain text).
    pub notes: Vec<String>,
}

/// A titled table of text cells with an explanatory caption.
#[derive(Debug, Clone, Default)]
pub struct TextTable {
    pub title: String,
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskSection {
    /// e.g. "double" or "unseen_single".
    pub task: String,
    /// One sentence describing the task (plain text).
    pub description: String,
    /// Summary table rows, in display order: the models scored on every test perturbation.
    pub summary: Vec<SummaryLine>,
    /// Smaller perturbation sets (models that cover fewer pairs, e.g. additive on doubles
    /// without measured singles): (caption, every model's summary on that set).
    pub subsets: Vec<(String, Vec<SummaryLine>)>,
    /// Per-perturbation L2 values for each model (model name, values), display order.
    pub l2_points: Vec<(String, Vec<f64>)>,
    /// Names among the models that are baselines (no_change, mean, additive, linear); drawn in grey, others in colour.
    pub baselines: Vec<String>,
    /// TPR–FDP curves for finding synergistic interactions (double task only; may be empty): (model, points as (fdp, tpr)), each curve sorted by fdp.
    pub gi_curves: Vec<(String, Vec<(f64, f64)>)>,
    /// Network-quality study (may be empty): the study model's mean L2 at each degradation.
    pub network: Vec<NetworkPoint>,
    /// Horizontal reference lines for the network plot: (label, mean L2), e.g. baselines and the intact-network model.
    pub network_references: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Default)]
pub struct SummaryLine {
    pub model: String,
    /// (metric name, mean, sd, n). Metric names like "l2", "pearson_delta", "mse_top20_de", "discrimination_score". NaN mean means undefined -> show "—".
    pub metrics: Vec<(String, f64, f64, usize)>,
}

#[derive(Debug, Clone, Default)]
pub struct NetworkPoint {
    /// The study model (retrained on each degraded network).
    pub model: String,
    /// "drop" (fraction of edges removed) or "add" (random edges added, as a fraction of the edge count).
    pub kind: String,
    pub fraction: f64,
    pub mean_l2: f64,
    pub sd_l2: f64,
    pub n: usize,
}

#[derive(Debug, Clone, Default)]
pub struct EfficiencyRow {
    pub model: String,
    pub n_params: usize,
    pub train_seconds: f64,
    pub predict_ms_single: f64,
    pub predict_ms_batched: f64,
    pub peak_rss_bytes: u64,
    /// e.g. "cpu (burn flex backend)".
    pub device: String,
    /// How many runs were averaged.
    pub runs: usize,
}

#[derive(Debug, Clone, Default)]
pub struct AttentionTop {
    pub model: String,
    pub task: String,
    pub perturbation: String,
    /// (gene, attention weight), highest first; typically 10 genes.
    pub genes: Vec<(String, f64)>,
    /// Attention a gene would get if attention were uniform (1 / number of genes), for reference.
    pub uniform: f64,
}

/// Below this peak (relative to uniform) an attention ranking is noise, not a finding.
const FLAT_ATTENTION: f64 = 1.5;

/// One sentence per model whose attention, over the perturbations shown, never gives any
/// gene `FLAT_ATTENTION`× the uniform weight: its top-gene lists must not be read as
/// explanations.
pub fn flat_attention_notes(attention: &[AttentionTop]) -> Vec<String> {
    let mut peak: Vec<(String, f64)> = Vec::new();
    for a in attention {
        let top = a.genes.first().map_or(0.0, |g| g.1) / a.uniform;
        match peak.iter_mut().find(|(m, _)| *m == a.model) {
            Some((_, p)) => *p = p.max(top),
            None => peak.push((a.model.clone(), top)),
        }
    }
    peak.into_iter()
        .filter(|(_, p)| *p < FLAT_ATTENTION)
        .map(|(m, p)| {
            format!("{m}: no gene gets more than {p:.2}× the uniform weight — the attention is flat, so these rankings carry no information about the perturbation.")
        })
        .collect()
}

// Writing into a String cannot fail; the macro keeps the many `write!` calls readable.
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

/// Okabe–Ito colours (minus the yellow, which vanishes on white) plus Tol's wine: distinguishable under common colour-vision deficiencies.
const PALETTE: [&str; 7] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255"];
const BASELINE_GREY: &str = "#8a8a8a";
const NEUTRAL: &str = "#333333";
/// Baselines share grey, so in line charts they are told apart by shade and dash pattern.
const BASELINE_STYLES: [(&str, &str); 4] = [("#6e6e6e", ""), ("#9a9a9a", "6 3"), ("#555555", "2 3"), ("#b0b0b0", "8 3 2 3")];
const DASH: &str = "\u{2014}";
const CHAR_PX: f64 = 6.6; // average glyph width of 12px sans-serif, for layout estimates

const CSS: &str = "body{font-family:Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;color:#222;background:#fff;margin:0}\
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px}h1{font-size:24px;margin:8px 0 12px}\
h2{font-size:19px;margin:36px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:20px 0 6px}\
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:8px 0 16px;font-variant-numeric:tabular-nums;font-size:13px}\
th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}th:first-child,td:first-child,.l{text-align:left}\
thead th{border-bottom:2px solid #bbb;background:#f6f6f6}tr.best td{font-weight:bold}tr.baseline td:first-child{color:#666}\
.tag{font-style:italic;color:#888;font-size:12px;margin-left:6px;font-weight:normal}.sub{color:#888;font-size:11px}\
figure{margin:12px 0 24px}figcaption{color:#555;font-size:13px;max-width:920px}svg{max-width:100%;height:auto;display:block}\
.grid{display:flex;flex-wrap:wrap;gap:4px 24px}.grid figure{margin:8px 0}";

/// The complete, self-contained HTML page (inline CSS, inline SVG, no scripts, no external links/fonts/images).
pub fn render(data: &ReportData) -> String {
    let colours = assign_colours(data);
    let mut o = String::with_capacity(64 * 1024);
    let title = if data.title.is_empty() { "Evaluation report" } else { data.title.as_str() };
    w!(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    w!(o, "<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n", esc(title), esc(title));
    for p in &data.intro {
        w!(o, "<p>{}</p>\n", esc(p));
    }
    if data.tasks.is_empty() {
        w!(o, "<p class=\"sub\">No task results.</p>\n");
    }
    for task in &data.tasks {
        task_section(&mut o, task, &colours);
    }
    if !data.attention.is_empty() {
        w!(o, "<section>\n<h2>Attention: top genes</h2>\n<p>Highest attention weights for a few perturbations; the dashed line is the weight every gene would get under uniform attention.</p>\n");
        for note in flat_attention_notes(&data.attention) {
            w!(o, "<p class=\"note\">{}</p>\n", esc(&note));
        }
        w!(o, "<div class=\"grid\">\n");
        for a in &data.attention {
            w!(o, "<figure>\n");
            attention_chart(&mut o, a, colour_of(&a.model, &[], &colours));
            w!(o, "</figure>\n");
        }
        w!(o, "</div>\n</section>\n");
    }
    for t in &data.tables {
        w!(o, "<section>\n<h2>{}</h2>\n<p>{}</p>\n<div class=\"scroll\"><table>\n<thead><tr>", esc(&t.title), esc(&t.caption));
        for (i, h) in t.header.iter().enumerate() {
            w!(o, "<th{}>{}</th>", if i == 0 { "" } else { " class=\"l\"" }, esc(h));
        }
        w!(o, "</tr></thead>\n<tbody>\n");
        for r in &t.rows {
            w!(o, "<tr>");
            for c in r {
                w!(o, "<td>{}</td>", esc(c));
            }
            w!(o, "</tr>\n");
        }
        w!(o, "</tbody>\n</table></div>\n</section>\n");
    }
    if !data.efficiency.is_empty() {
        efficiency_table(&mut o, &data.efficiency);
    }
    if !data.notes.is_empty() {
        w!(o, "<section>\n<h2>Notes</h2>\n<ul>\n");
        for n in &data.notes {
            w!(o, "<li>{}</li>\n", esc(n));
        }
        w!(o, "</ul>\n</section>\n");
    }
    w!(o, "</main>\n</body>\n</html>\n");
    o
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Shortens long labels so that chart layout stays bounded; the full text goes into a `<title>`.
fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    t.push('\u{2026}');
    t
}

/// An SVG coordinate: one decimal is plenty at screen resolution, and non-finite becomes 0.
struct P(f64);

impl fmt::Display for P {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_finite() {
            write!(f, "{:.1}", self.0)
        } else {
            f.write_str("0")
        }
    }
}

fn fixed(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        DASH.to_string()
    }
}

/// About three significant digits, switching to scientific notation where fixed would be unreadable.
fn sig(x: f64) -> String {
    if !x.is_finite() {
        return DASH.to_string();
    }
    let a = x.abs();
    if a == 0.0 {
        "0".to_string()
    } else if !(1e-4..1e6).contains(&a) {
        format!("{x:.2e}")
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.decimals$}")
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(b: u64) -> String {
    // Zero means the run did not record memory: no process has an empty resident set.
    const MIB: f64 = 1024.0 * 1024.0;
    let x = b as f64;
    if b == 0 {
        DASH.to_string()
    } else if x >= 1024.0 * MIB {
        format!("{:.2} GiB", x / (1024.0 * MIB))
    } else {
        format!("{:.2} MiB", x / MIB)
    }
}

fn percent(f: f64) -> String {
    let p = f * 100.0;
    if (p - p.round()).abs() < 1e-6 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Axis ticks from 0 to a "nice" maximum (a multiple of 1, 2 or 5 × 10^k), about five steps.
#[derive(Debug)]
struct Ticks {
    max: f64,
    step: f64,
    values: Vec<f64>,
}

fn nice_ticks(data_max: f64) -> Ticks {
    let max = if data_max.is_finite() && data_max > 0.0 { data_max } else { 1.0 };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let residual = raw / mag;
    let step = mag * [1.0, 2.0, 5.0, 10.0].into_iter().find(|&m| residual <= m * (1.0 + 1e-9)).unwrap_or(10.0);
    // The small slack keeps 1.0 / 0.2 = 5.000…1 from adding an empty sixth step.
    let n = ((max / step) * (1.0 - 1e-9)).ceil().max(1.0);
    let (max, step, n) = if (n * step).is_finite() && step > 0.0 { (n * step, step, n as usize) } else { (max, max / 5.0, 5) };
    Ticks { max, step, values: (0..=n).map(|i| i as f64 * step).collect() }
}

fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !(1e-4..1e6).contains(&step) {
        return format!("{v:.1e}");
    }
    let decimals = (-step.log10()).ceil().max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// Maps a data interval onto pixels, clamping so a stray value cannot escape the plot area.
#[derive(Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if !v.is_finite() || !span.is_finite() || span == 0.0 {
            return self.r0;
        }
        self.r0 + ((v - self.d0) / span).clamp(0.0, 1.0) * (self.r1 - self.r0)
    }
}

/// Baselines are grey everywhere; other models keep one palette colour across the whole page.
fn assign_colours(data: &ReportData) -> Vec<(String, &'static str)> {
    let is_baseline = |m: &str| data.tasks.iter().any(|t| t.baselines.iter().any(|b| b == m));
    let mut out: Vec<(String, &'static str)> = Vec::new();
    let names =
        data.tasks.iter().flat_map(|t| t.summary.iter().map(|s| &s.model).chain(t.l2_points.iter().map(|p| &p.0)).chain(t.gi_curves.iter().map(|c| &c.0)));
    for m in names.chain(data.attention.iter().map(|a| &a.model)) {
        if !is_baseline(m) && !out.iter().any(|(n, _)| n == m) {
            let c = PALETTE[out.len() % PALETTE.len()];
            out.push((m.clone(), c));
        }
    }
    out
}

/// A name that is neither a baseline nor a known model (e.g. a reference label) gets neutral dark grey.
fn colour_of(model: &str, baselines: &[String], colours: &[(String, &'static str)]) -> &'static str {
    if baselines.iter().any(|b| b == model) {
        return BASELINE_GREY;
    }
    colours.iter().find(|(n, _)| n == model).map(|(_, c)| *c).unwrap_or(NEUTRAL)
}

/// Deterministic pseudo-random number in [0, 1) (SplitMix64), so jitter is identical on every render.
fn jitter(a: usize, b: usize) -> f64 {
    let mut z = (((a as u64) << 32) ^ b as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn svg_open(o: &mut String, w: f64, h: f64, title: &str) {
    let (w, h) = (P(w), P(h));
    w!(o, "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" font-family=\"Helvetica,Arial,sans-serif\" font-size=\"12\">\n");
    w!(o, "<title>{}</title>\n", esc(title));
}

/// A straight line; `title` (plain text) becomes its hover tooltip.
fn line(o: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), style: &str, title: Option<&str>) {
    w!(o, "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {style}", P(x1), P(y1), P(x2), P(y2));
    match title {
        Some(t) => w!(o, "><title>{}</title></line>\n", esc(t)),
        None => w!(o, "/>\n"),
    }
}

fn polyline(o: &mut String, pts: &[(f64, f64)], style: &str, title: &str) {
    w!(o, "<polyline fill=\"none\" {style} points=\"");
    for (k, (x, y)) in pts.iter().enumerate() {
        w!(o, "{}{},{}", if k == 0 { "" } else { " " }, P(*x), P(*y));
    }
    w!(o, "\"><title>{}</title></polyline>\n", esc(title));
}

/// Horizontal grid lines with tick labels on the left of `x0`.
fn y_grid(o: &mut String, ticks: &Ticks, y: Scale, x0: f64, x1: f64, labels: bool) {
    for &v in &ticks.values {
        let py = y.map(v);
        line(o, (x0, py), (x1, py), "stroke=\"#e6e6e6\"", None);
        if labels {
            w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#444\">{}</text>\n", P(x0 - 6.0), P(py + 4.0), tick_label(v, ticks.step));
        }
    }
}

fn y_title(o: &mut String, x: f64, y: f64, text: &str) {
    w!(o, "<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">{}</text>\n", P(x), P(y), esc(text));
}

fn task_section(o: &mut String, task: &TaskSection, colours: &[(String, &'static str)]) {
    w!(o, "<section>\n<h2>Task: {}</h2>\n", esc(&task.task));
    if !task.description.is_empty() {
        w!(o, "<p>{}</p>\n", esc(&task.description));
    }
    summary_table(o, &task.summary, &task.baselines);
    for (caption, lines) in &task.subsets {
        w!(o, "<h3>On fewer perturbations</h3>\n<p>{}</p>\n", esc(caption));
        summary_table(o, lines, &task.baselines);
    }
    if !task.l2_points.is_empty() {
        w!(o, "<figure>\n");
        strip_plot(o, task, colours);
        w!(o, "<figcaption>L2 per model: each dot is one test perturbation, the dark bar is the mean. Grey columns are baselines.</figcaption>\n</figure>\n");
    }
    if !task.gi_curves.is_empty() {
        w!(o, "<h3>Finding synergistic interactions</h3>\n<figure>\n");
        gi_chart(o, task, colours);
        w!(o, "<figcaption>True positive rate against false discovery proportion when each model's predicted deviations from additivity rank the observed synergistic interactions.</figcaption>\n</figure>\n");
    }
    if !task.network.is_empty() {
        w!(o, "<h3>Network quality</h3>\n<figure>\n");
        network_chart(o, task, colours);
        w!(o, "<figcaption>Mean L2 (± sd over test perturbations) of the study model when its gene network is degraded; 0% is the intact network. Dashed lines are references.</figcaption>\n</figure>\n");
    }
    w!(o, "</section>\n");
}

fn summary_table(o: &mut String, summary: &[SummaryLine], baselines: &[String]) {
    if summary.is_empty() {
        return;
    }
    let mut metrics: Vec<&str> = Vec::new();
    for m in summary.iter().flat_map(|s| s.metrics.iter()) {
        if !metrics.contains(&m.0.as_str()) {
            metrics.push(&m.0);
        }
    }
    let l2 = |s: &SummaryLine| s.metrics.iter().find(|m| m.0 == "l2").map(|m| m.1).filter(|v| v.is_finite());
    let best = summary.iter().filter_map(l2).fold(f64::INFINITY, f64::min);
    w!(o, "<div class=\"scroll\"><table>\n<thead><tr><th>model</th>");
    for m in &metrics {
        w!(o, "<th>{}</th>", esc(m));
    }
    w!(o, "<th>n</th></tr></thead>\n<tbody>\n");
    for s in summary {
        let baseline = baselines.contains(&s.model);
        let class = match (l2(s) == Some(best), baseline) {
            (true, true) => " class=\"best baseline\"",
            (true, false) => " class=\"best\"",
            (false, true) => " class=\"baseline\"",
            (false, false) => "",
        };
        w!(o, "<tr{class}><td>{}{}</td>", esc(&s.model), if baseline { "<span class=\"tag\">baseline</span>" } else { "" });
        // The row's n is L2's; a metric defined for fewer perturbations shows its own n.
        let row_n = s.metrics.iter().find(|m| m.0 == "l2").or(s.metrics.first()).map(|m| m.3);
        for name in &metrics {
            match s.metrics.iter().find(|m| m.0 == *name) {
                Some(&(_, mean, sd, n)) if mean.is_finite() => {
                    w!(o, "<td>{}", fixed(mean, 3));
                    if sd.is_finite() {
                        w!(o, " ± {}", fixed(sd, 3));
                    }
                    if Some(n) != row_n {
                        w!(o, " <span class=\"sub\">n={n}</span>");
                    }
                    w!(o, "</td>");
                }
                _ => w!(o, "<td>{DASH}</td>"),
            }
        }
        w!(o, "<td>{}</td></tr>\n", row_n.map(|n| n.to_string()).unwrap_or_else(|| DASH.to_string()));
    }
    w!(o, "</tbody>\n</table></div>\n");
}

fn strip_plot(o: &mut String, task: &TaskSection, colours: &[(String, &'static str)]) {
    let models = &task.l2_points;
    let (width, left, right, top, plot_h) = (960.0, 74.0, 16.0, 16.0, 280.0);
    let col_w = (width - left - right) / models.len().max(1) as f64;
    let labels: Vec<String> = models.iter().map(|(m, _)| truncate(m, 22)).collect();
    let label_px = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_PX;
    // Rotate only when names would collide; 35° keeps them legible and the plot short.
    let rotate = label_px > col_w - 8.0;
    let bottom = if rotate { (label_px * 0.574 + 28.0).max(44.0) } else { 40.0 };
    let height = top + plot_h + bottom;
    let data_max = models.iter().flat_map(|(_, v)| v.iter()).copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    let ticks = nice_ticks(data_max);
    let y = Scale { d0: 0.0, d1: ticks.max, r0: top + plot_h, r1: top };
    svg_open(o, width, height, &format!("L2 per model, task {}", task.task));
    y_grid(o, &ticks, y, left, width - right, true);
    y_title(o, 16.0, top + plot_h / 2.0, "L2 over top-1000 genes (lower is better)");
    line(o, (left, top + plot_h), (width - right, top + plot_h), "stroke=\"#999\"", None);
    let n_points = models.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let (r, opacity) = if n_points > 200 { (2.0, 0.3) } else { (3.0, 0.5) };
    let spread = (col_w * 0.35).min(28.0);
    for (i, ((model, values), label)) in models.iter().zip(&labels).enumerate() {
        let cx = left + col_w * (i as f64 + 0.5);
        let colour = colour_of(model, &task.baselines, colours);
        w!(o, "<g fill=\"{colour}\" fill-opacity=\"{opacity}\">\n");
        for (j, &v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            let dx = (jitter(i, j) * 2.0 - 1.0) * spread;
            w!(o, "<circle cx=\"{}\" cy=\"{}\" r=\"{r}\"/>\n", P(cx + dx), P(y.map(v)));
        }
        w!(o, "</g>\n");
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if !finite.is_empty() {
            let mean = finite.iter().sum::<f64>() / finite.len() as f64;
            let (hw, my) = ((col_w * 0.32).min(26.0), y.map(mean));
            let title = format!("{model}: mean L2 {} (n={})", sig(mean), finite.len());
            line(o, (cx - hw, my), (cx + hw, my), "stroke=\"#111\" stroke-width=\"2.5\"", Some(&title));
        }
        let ly = top + plot_h + 16.0;
        let fill = if task.baselines.contains(model) { "#666" } else { "#222" };
        if rotate {
            w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{fill}\" transform=\"rotate(-35 {} {})\">", P(cx + 4.0), P(ly), P(cx + 4.0), P(ly));
        } else {
            w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{fill}\">", P(cx), P(ly));
        }
        w!(o, "<title>{}</title>{}</text>\n", esc(model), esc(label));
    }
    w!(o, "</svg>\n");
}

fn gi_chart(o: &mut String, task: &TaskSection, colours: &[(String, &'static str)]) {
    let (width, height, left, right, top, bottom) = (900.0, 380.0, 64.0, 220.0, 24.0, 50.0);
    let x = Scale { d0: 0.0, d1: 1.0, r0: left, r1: width - right };
    let y = Scale { d0: 0.0, d1: 1.0, r0: height - bottom, r1: top };
    let ticks = nice_ticks(1.0);
    svg_open(o, width, height, &format!("TPR against FDP, task {}", task.task));
    y_grid(o, &ticks, y, x.r0, x.r1, true);
    for &v in &ticks.values {
        let px = x.map(v);
        line(o, (px, y.r0), (px, y.r1), "stroke=\"#e6e6e6\"", None);
        w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n", P(px), P(y.r0 + 16.0), tick_label(v, ticks.step));
    }
    w!(o, "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n", P(x.r0), P(y.r1), P(x.r1 - x.r0), P(y.r0 - y.r1));
    w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">FDP (false discovery proportion)</text>\n", P((x.r0 + x.r1) / 2.0), P(height - 12.0));
    y_title(o, 18.0, (y.r0 + y.r1) / 2.0, "TPR (true positive rate)");
    let fx = x.map(0.25);
    line(o, (fx, y.r0), (fx, y.r1), "stroke=\"#333\" stroke-dasharray=\"5 4\"", None);
    w!(o, "<text x=\"{}\" y=\"{}\" fill=\"#333\">FDP = 0.25</text>\n", P(fx + 4.0), P(y.r1 + 14.0));
    let mut n_baselines = 0;
    for (i, (model, points)) in task.gi_curves.iter().enumerate() {
        let (colour, dash, stroke_w) = if task.baselines.contains(model) {
            n_baselines += 1;
            let (c, d) = BASELINE_STYLES[(n_baselines - 1) % BASELINE_STYLES.len()];
            (c, d, 1.8)
        } else {
            (colour_of(model, &task.baselines, colours), "", 2.2)
        };
        let style =
            format!("stroke=\"{colour}\" stroke-width=\"{stroke_w}\"{}", if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") });
        let pts: Vec<(f64, f64)> = points.iter().filter(|(f, t)| f.is_finite() && t.is_finite()).map(|&(f, t)| (x.map(f), y.map(t))).collect();
        if let [(px, py)] = pts[..] {
            w!(o, "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{colour}\"/>\n", P(px), P(py));
        } else if !pts.is_empty() {
            polyline(o, &pts, &style, model);
        }
        let ly = top + 8.0 + i as f64 * 20.0;
        let lx = width - right + 16.0;
        line(o, (lx, ly), (lx + 26.0, ly), &style, None);
        w!(o, "<text x=\"{}\" y=\"{}\" fill=\"#222\"><title>{}</title>{}</text>\n", P(lx + 32.0), P(ly + 4.0), esc(model), esc(&truncate(model, 26)));
    }
    w!(o, "</svg>\n");
}

/// One study model's line over one panel of the network chart, with ± sd whiskers; with
/// `label_row` (several models share the panel), the model's name above its last point,
/// one text row higher per model so close lines keep readable names.
fn network_series(o: &mut String, points: &[&&NetworkPoint], x: Scale, y: Scale, colour: &str, kind: &str, label_row: Option<usize>) {
    let path: Vec<(f64, f64)> = points.iter().map(|p| (x.map(p.fraction), y.map(p.mean_l2))).collect();
    if path.len() > 1 {
        polyline(o, &path, &format!("stroke=\"{colour}\" stroke-width=\"2\""), kind);
    }
    for p in points {
        let (px, py) = (x.map(p.fraction), y.map(p.mean_l2));
        if p.sd_l2.is_finite() && p.sd_l2 > 0.0 {
            let (ya, yb) = (y.map(p.mean_l2 - p.sd_l2), y.map(p.mean_l2 + p.sd_l2));
            let style = format!("stroke=\"{colour}\" stroke-width=\"1.3\"");
            line(o, (px, ya), (px, yb), &style, None);
            line(o, (px - 4.0, ya), (px + 4.0, ya), &style, None);
            line(o, (px - 4.0, yb), (px + 4.0, yb), &style, None);
        }
        let title = format!("{} {kind} {}: mean L2 {} ± {} (n={})", p.model, percent(p.fraction), sig(p.mean_l2), sig(p.sd_l2), p.n);
        w!(o, "<circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{colour}\"><title>{}</title></circle>\n", P(px), P(py), esc(&title));
    }
    if let (Some(row), Some(last)) = (label_row, path.last()) {
        w!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{colour}\">{}</text>\n",
            P(last.0 - 6.0),
            P(last.1 - 8.0 - 14.0 * row as f64),
            esc(&points[points.len() - 1].model)
        );
    }
}

fn network_chart(o: &mut String, task: &TaskSection, colours: &[(String, &'static str)]) {
    // The study's two kinds in a fixed order, whatever order the points came in; unknown kinds follow.
    let mut kinds: Vec<&str> = vec![];
    for k in ["drop", "add"].into_iter().chain(task.network.iter().map(|p| p.kind.as_str())) {
        if !kinds.contains(&k) && task.network.iter().any(|p| p.kind == k) {
            kinds.push(k);
        }
    }
    let (width, left, right, top, plot_h, bottom, gap) = (960.0, 74.0, 190.0, 34.0, 280.0, 48.0, 36.0);
    let height = top + plot_h + bottom;
    let panel_w = (width - left - right - gap * (kinds.len().max(1) - 1) as f64) / kinds.len().max(1) as f64;
    let hi = |p: &NetworkPoint| p.mean_l2 + if p.sd_l2.is_finite() { p.sd_l2 } else { 0.0 };
    let data_max = task.network.iter().map(hi).chain(task.network_references.iter().map(|r| r.1)).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let ticks = nice_ticks(data_max);
    let y = Scale { d0: 0.0, d1: ticks.max, r0: top + plot_h, r1: top };
    svg_open(o, width, height, &format!("Network quality study, task {}", task.task));
    y_title(o, 16.0, top + plot_h / 2.0, "mean L2 (lower is better)");
    for (ki, kind) in kinds.iter().enumerate() {
        let x0 = left + ki as f64 * (panel_w + gap);
        let mut pts: Vec<&NetworkPoint> = task.network.iter().filter(|p| p.kind == *kind && p.fraction.is_finite()).collect();
        pts.sort_by(|a, b| a.fraction.total_cmp(&b.fraction));
        let x_max = pts.iter().map(|p| p.fraction).fold(0.0, f64::max);
        let x = Scale { d0: 0.0, d1: if x_max > 0.0 { x_max } else { 1.0 }, r0: x0 + 14.0, r1: x0 + panel_w - 14.0 };
        y_grid(o, &ticks, y, x0, x0 + panel_w, ki == 0);
        w!(o, "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n", P(x0), P(top), P(panel_w), P(plot_h));
        let title = match *kind {
            "drop" => "Edges removed".to_string(),
            "add" => "Random edges added".to_string(),
            other => esc(other),
        };
        w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\" fill=\"#222\">{title}</text>\n", P(x0 + panel_w / 2.0), P(top - 10.0));
        w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">fraction of edges</text>\n", P(x0 + panel_w / 2.0), P(height - 10.0));
        let mut labelled: Vec<f64> = vec![];
        for p in &pts {
            if !labelled.iter().any(|f| (f - p.fraction).abs() < 1e-12) {
                labelled.push(p.fraction);
                let px = x.map(p.fraction);
                w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{}</text>\n", P(px), P(top + plot_h + 16.0), percent(p.fraction));
            }
        }
        let mut models: Vec<&str> = Vec::new();
        for p in &pts {
            if !models.contains(&p.model.as_str()) {
                models.push(&p.model);
            }
        }
        for (row, model) in models.iter().enumerate() {
            // With one study model a palette colour would wrongly suggest some other model.
            let colour = if models.len() == 1 { NEUTRAL } else { colour_of(model, &task.baselines, colours) };
            let finite: Vec<&&NetworkPoint> = pts.iter().filter(|p| p.model == *model && p.mean_l2.is_finite()).collect();
            network_series(o, &finite, x, y, colour, kind, (models.len() > 1).then_some(row));
        }
    }
    // References span all panels; their labels sit in the right margin, nudged apart so close values stay readable.
    let x_end = width - right;
    let mut labels: Vec<(f64, f64, &str, &str)> = vec![];
    for (label, v) in task.network_references.iter().filter(|r| r.1.is_finite()) {
        let colour = colour_of(label, &task.baselines, colours);
        let py = y.map(*v);
        let style = format!("stroke=\"{colour}\" stroke-width=\"1.3\" stroke-dasharray=\"6 4\"");
        line(o, (left, py), (x_end, py), &style, Some(&format!("{label}: {}", sig(*v))));
        labels.push((py, *v, label, colour));
    }
    labels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut prev = f64::NEG_INFINITY;
    for (py, v, label, colour) in labels {
        let ly = (py + 4.0).max(prev + 13.0);
        prev = ly;
        w!(o, "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{} ({})</text>\n", P(x_end + 6.0), P(ly), esc(&truncate(label, 18)), sig(v));
    }
    w!(o, "</svg>\n");
}

fn attention_chart(o: &mut String, a: &AttentionTop, colour: &str) {
    let (width, left, right, top, row_h, bottom) = (480.0, 120.0, 56.0, 40.0, 19.0, 28.0);
    let height = top + row_h * a.genes.len().max(1) as f64 + bottom;
    let data_max = a.genes.iter().map(|g| g.1).chain([a.uniform]).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let ticks = nice_ticks(data_max);
    let x = Scale { d0: 0.0, d1: ticks.max, r0: left, r1: width - right };
    let base_y = height - bottom;
    let title = format!("{} \u{2014} {} \u{2014} {}", a.model, a.task, a.perturbation);
    svg_open(o, width, height, &title);
    w!(o, "<text x=\"4\" y=\"16\" font-weight=\"bold\" fill=\"#222\">{}</text>\n", esc(&truncate(&title, 68)));
    for &v in &ticks.values {
        let px = x.map(v);
        line(o, (px, top - 4.0), (px, base_y), "stroke=\"#eee\"", None);
        w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">{}</text>\n", P(px), P(base_y + 13.0), tick_label(v, ticks.step));
    }
    if a.genes.is_empty() {
        w!(o, "<text x=\"{}\" y=\"{}\" fill=\"#888\">no genes</text>\n", P(left + 8.0), P(top + 13.0));
    }
    for (i, (gene, weight)) in a.genes.iter().enumerate() {
        let ry = top + i as f64 * row_h;
        let bw = if weight.is_finite() { x.map(*weight) - left } else { 0.0 };
        let (full, shown) = (esc(gene), esc(&truncate(gene, 16)));
        w!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#222\"><title>{full}</title>{shown}</text>\n", P(left - 6.0), P(ry + 12.0));
        w!(o, "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\" fill-opacity=\"0.85\"/>\n", P(left), P(ry + 2.0), P(bw), P(row_h - 5.0));
        w!(o, "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#444\">{}</text>\n", P(left + bw + 4.0), P(ry + 12.0), sig(*weight));
    }
    if a.uniform.is_finite() && a.uniform > 0.0 {
        let ux = x.map(a.uniform);
        line(o, (ux, top - 4.0), (ux, base_y), "stroke=\"#333\" stroke-dasharray=\"4 3\"", Some(&format!("uniform {}", sig(a.uniform))));
        w!(o, "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#333\">uniform</text>\n", P(ux + 3.0), P(top - 6.0));
    }
    line(o, (left, base_y), (x.r1, base_y), "stroke=\"#999\"", None);
    w!(o, "</svg>\n");
}

fn efficiency_table(o: &mut String, rows: &[EfficiencyRow]) {
    w!(o, "<section>\n<h2>Efficiency</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>model</th><th>parameters</th><th>training s</th>");
    w!(o, "<th>predict ms/perturbation (single)</th><th>predict ms/perturbation (batched)</th><th>peak memory</th><th class=\"l\">device</th><th>runs</th></tr></thead>\n<tbody>\n");
    for r in rows {
        let (time, ms1, msb) = (fixed(r.train_seconds, 2), fixed(r.predict_ms_single, 3), fixed(r.predict_ms_batched, 3));
        w!(o, "<tr><td>{}</td><td>{}</td><td>{time}</td><td>{ms1}</td><td>{msb}</td>", esc(&r.model), thousands(r.n_params));
        w!(o, "<td>{}</td><td class=\"l\">{}</td><td>{}</td></tr>\n", bytes(r.peak_rss_bytes), esc(&r.device), r.runs);
    }
    w!(o, "</tbody>\n</table></div>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReportData {
        let baselines: Vec<String> = ["no_change", "mean", "additive", "linear"].iter().map(|s| s.to_string()).collect();
        let models = ["no_change", "mean", "additive", "linear", "app_identity_emb", "app_full", "gears_like <v2>"];
        let l2_points = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.to_string(), (0..60).map(|j| 2.0 + i as f64 * 0.4 - 0.3 * (i == 5) as u8 as f64 + 3.0 * jitter(j, i * 7)).collect()))
            .collect();
        let summary = models
            .iter()
            .enumerate()
            .map(|(i, m)| SummaryLine {
                model: m.to_string(),
                metrics: vec![
                    ("l2".into(), 4.0 + i as f64 * 0.1 - if i == 5 { 2.0 } else { 0.0 }, 1.2, 60),
                    ("pearson_delta".into(), if i == 0 { f64::NAN } else { 0.5 + 0.03 * i as f64 }, 0.2, if i == 3 { 55 } else { 60 }),
                    ("mse_top20_de".into(), 0.8 - 0.05 * i as f64, f64::NAN, 60),
                ],
            })
            .collect();
        let curve = |k: f64| (0..=20).map(|i| i as f64 / 20.0).map(|f| (f, (f * k).min(1.0).powf(0.6))).collect::<Vec<_>>();
        let gi_curves =
            vec![("additive".into(), vec![]), ("linear".into(), curve(1.2)), ("app_full".into(), curve(2.5)), ("gears_like <v2>".into(), curve(1.8))];
        let mut network = vec![];
        for (kind, fracs) in [("drop", [0.0, 0.1, 0.25, 0.5]), ("add", [0.0, 0.25, 0.5, 1.0])] {
            for f in fracs {
                network.push(NetworkPoint { model: "app_full".into(), kind: kind.into(), fraction: f, mean_l2: 2.1 + f * 1.5, sd_l2: 0.6, n: 60 });
            }
        }
        let double = TaskSection {
            task: "double".into(),
            description: "Predict held-out double perturbations whose singles were seen in training.".into(),
            subsets: vec![(
                "additive covers only 2 of the 3 pairs & is ranked here".into(),
                vec![SummaryLine { model: "additive".into(), metrics: vec![("l2".into(), 2.0, 0.1, 2)] }],
            )],
            summary,
            l2_points,
            baselines: baselines.clone(),
            gi_curves,
            network,
            network_references: vec![("no_change".into(), 4.0), ("additive".into(), 4.2), ("mean".into(), 4.1), ("app_full (intact)".into(), 2.1)],
        };
        let single = TaskSection {
            task: "unseen_single".into(),
            description: "Predict single perturbations of genes never perturbed in training & \"unseen\".".into(),
            summary: vec![SummaryLine { model: "mean".into(), metrics: vec![("l2".into(), 3.0, 0.5, 1)] }],
            l2_points: [
                "mean",
                "app_full",
                "all_nan",
                "app_identity_emb",
                "app_no_network_prior",
                "gears_like <v2>",
                "linear",
                "additive",
                "x",
                "a_very_long_model_name_that_needs_truncation",
                "m10",
                "m11",
            ]
            .iter()
            .enumerate()
            .map(|(i, m)| (m.to_string(), if i == 2 { vec![f64::NAN; 3] } else { (0..i * 40).map(|j| 1.0 + jitter(i + 100, j) * i as f64).collect() }))
            .collect(),
            baselines,
            ..Default::default()
        };
        let genes: Vec<(String, f64)> = (0..10).map(|i| (format!("GENE{i}"), 0.02 / (1.0 + i as f64))).collect();
        ReportData {
            title: "perturb evaluation <sample>".into(),
            intro: vec!["Models & baselines on Norman 2019.".into()],
            tasks: vec![double, single],
            efficiency: vec![
                EfficiencyRow {
                    model: "app_full".into(),
                    n_params: 1_234_567,
                    train_seconds: 812.5,
                    predict_ms_single: 3.21,
                    predict_ms_batched: 0.41,
                    peak_rss_bytes: 3 << 30,
                    device: "cpu (burn flex backend)".into(),
                    runs: 3,
                },
                EfficiencyRow {
                    model: "linear".into(),
                    n_params: 999,
                    train_seconds: 1.2,
                    predict_ms_single: 0.01,
                    predict_ms_batched: f64::NAN,
                    peak_rss_bytes: 300 << 20,
                    device: "cpu".into(),
                    runs: 1,
                },
            ],
            attention: vec![
                AttentionTop { model: "app_full".into(), task: "double".into(), perturbation: "CBL+CNN1".into(), genes: genes.clone(), uniform: 0.001 },
                AttentionTop { model: "app_full".into(), task: "unseen_single".into(), perturbation: "KLF1".into(), genes, uniform: 0.001 },
                AttentionTop { model: "app_full".into(), task: "x".into(), perturbation: "empty".into(), genes: vec![], uniform: f64::NAN },
            ],
            tables: vec![TextTable {
                title: "T <1>".into(),
                caption: "c".into(),
                header: vec!["a".into(), "b".into()],
                rows: vec![vec!["x".into(), "y".into()]],
            }],
            notes: vec!["Dots are jittered deterministically; <script> tags are just text.".into()],
        }
    }

    /// Attribute values (`name="value"`) inside SVG elements.
    fn svg_attribute_values(html: &str) -> Vec<&str> {
        let mut out = vec![];
        for svg in html.split("<svg").skip(1) {
            let body = svg.split("</svg>").next().unwrap_or("");
            let mut parts = body.split("=\"").skip(1);
            for p in &mut parts {
                out.push(p.split('"').next().unwrap_or(""));
            }
        }
        out
    }

    fn assert_clean(html: &str) {
        for v in svg_attribute_values(html) {
            let l = v.to_ascii_lowercase();
            assert!(!l.contains("nan") && !l.contains("inf"), "bad SVG attribute value {v:?}");
        }
        assert!(!html.contains("NaN"));
    }

    #[test]
    fn escapes_html() {
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        let html = render(&sample());
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(html.contains("<h2>T &lt;1&gt;</h2>") && html.contains("<td>x</td><td>y</td>"), "text tables are escaped and rendered");
        assert!(html.contains("gears_like &lt;v2&gt;") && !html.contains("gears_like <v2>"));
        assert!(
            html.contains("<h3>On fewer perturbations</h3>\n<p>additive covers only 2 of the 3 pairs &amp; is ranked here</p>"),
            "smaller sets get their own table"
        );
    }

    #[test]
    fn nice_ticks_are_round() {
        let t = nice_ticks(0.87);
        assert_eq!((t.max, t.step, t.values.len()), (1.0, 0.2, 6));
        let t = nice_ticks(3.7);
        assert_eq!((t.max, t.step), (4.0, 1.0));
        let t = nice_ticks(1.0);
        assert_eq!((t.max, t.values.len()), (1.0, 6));
        assert_eq!(nice_ticks(0.0).max, 1.0);
        assert_eq!(nice_ticks(f64::NAN).max, 1.0);
        assert!(nice_ticks(f64::MAX).max.is_finite());
        assert!(nice_ticks(1e-300).max > 0.0);
        assert_eq!(tick_label(0.6000000000000001, 0.2), "0.6");
        assert_eq!(tick_label(250.0, 50.0), "250");
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(0), "0");
        assert_eq!(bytes(300 << 20), "300.00 MiB");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(fixed(f64::NAN, 3), DASH);
        assert_eq!(sig(0.0123456), "0.0123");
    }

    #[test]
    fn one_svg_per_chart() {
        let html = render(&sample());
        // Strip plots for both tasks, GI and network for "double", three attention charts.
        assert_eq!(html.matches("<svg").count(), 2 + 1 + 1 + 3);
        assert_eq!(html.matches("</svg>").count(), 7);
        assert!(html.contains("L2 over top-1000 genes (lower is better)"));
        assert!(html.contains("FDP = 0.25"));
    }

    #[test]
    fn summary_table_marks_best_and_baselines() {
        let html = render(&sample());
        assert!(html.contains("<tr class=\"best\"><td>app_full</td><td>2.500 ± 1.200</td>"));
        assert!(html.contains("<tr class=\"baseline\"><td>no_change<span class=\"tag\">baseline</span></td><td>4.000 ± 1.200</td><td>\u{2014}</td>"));
        assert!(html.contains("0.590 ± 0.200 <span class=\"sub\">n=55</span>"));
    }

    #[test]
    fn deterministic() {
        assert_eq!(render(&sample()), render(&sample()));
    }

    #[test]
    fn robust_to_degenerate_input() {
        let html = render(&ReportData::default());
        assert!(html.contains("No task results") && !html.contains("<svg"));
        assert_clean(&html);
        assert_clean(&render(&sample()));
        let weird = TaskSection {
            task: "weird".into(),
            l2_points: vec![("zero".into(), vec![0.0; 5]), ("huge".into(), vec![1e300, f64::MAX, f64::INFINITY]), ("none".into(), vec![])],
            gi_curves: vec![("one".into(), vec![(0.5, 0.5)]), ("bad".into(), vec![(f64::NAN, 1.0), (2.0, -1.0)])],
            network: vec![NetworkPoint { model: "m".into(), kind: "drop".into(), fraction: f64::NAN, mean_l2: f64::NAN, sd_l2: f64::NAN, n: 0 }],
            network_references: vec![("r".into(), f64::NEG_INFINITY)],
            summary: vec![SummaryLine { model: "zero".into(), metrics: vec![("l2".into(), f64::NAN, f64::NAN, 0)] }],
            ..Default::default()
        };
        let all_nan = TaskSection { task: "nan".into(), l2_points: vec![("m".into(), vec![f64::NAN; 4])], ..Default::default() };
        let a = AttentionTop { genes: vec![("G".into(), f64::NAN), ("H".into(), 0.0)], uniform: 0.0, ..Default::default() };
        let eff = EfficiencyRow { train_seconds: f64::INFINITY, ..Default::default() };
        let data = ReportData { tasks: vec![weird, all_nan], attention: vec![a], efficiency: vec![eff], ..Default::default() };
        assert_clean(&render(&data));
    }

    #[test]
    fn writes_sample_when_asked() {
        if std::env::var_os("REPORT_HTML_SAMPLE").is_none() {
            return;
        }
        let dir = std::path::Path::new("/tmp/report_html_dev");
        std::fs::create_dir_all(dir).expect("create sample dir");
        std::fs::write(dir.join("sample.html"), render(&sample())).expect("write sample");
    }

    #[test]
    fn flat_attention_is_called_flat_and_peaked_attention_is_not() {
        let top = |model: &str, w: f64| AttentionTop {
            model: model.into(),
            task: "double".into(),
            perturbation: "A+B".into(),
            genes: vec![("G1".into(), w), ("G2".into(), 0.001)],
            uniform: 0.001,
        };
        let notes = flat_attention_notes(&[top("flat", 0.0012), top("flat", 0.0011), top("peaked", 0.01)]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("flat: no gene gets more than 1.20×"), "{}", notes[0]);
    }
}
