#include "report_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "report_html.h"
#include "scratchnet/check.h"

namespace scratchnet {

namespace {

// An axis range [lo, hi] in steps of 1, 2 or 5 times a power of ten, about `intervals` of them.
struct Axis {
  double lo = 0, hi = 1, step = 1;
};

Axis nice_axis(double lo, double hi, int intervals) {
  if (!(hi > lo)) {  // one value: a band around it
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    hi = lo + pad;
    lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad;
  }
  const double raw = (hi - lo) / intervals;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude;
  return {std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, step};
}

// A tick value with as many decimals as the step needs ("0", "0.0005", "97.5").
std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-6) return "0";
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return fmt::format("{:.{}f}", v, decimals);
}

// The value in a point's tooltip: 4 significant digits.
std::string value_label(double v) { return fmt::format("{:.4g}", v); }

struct Rgb {
  double r, g, b;
};

// a + t (b - a), t in [0, 1], as "#rrggbb".
std::string mix(Rgb a, Rgb b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto channel = [&](double x, double y) { return static_cast<int>(std::lround(x + t * (y - x))); };
  return fmt::format("#{:02x}{:02x}{:02x}", channel(a.r, b.r), channel(a.g, b.g),
                     channel(a.b, b.b));
}

constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kBlue{33, 102, 172};
constexpr Rgb kRed{178, 24, 43};

std::string class_label(const std::vector<std::string>& names, int64_t c) {
  return c < static_cast<int64_t>(names.size()) ? names[c] : std::to_string(c);
}

}  // namespace

std::string svg_line_chart(const SvgChart& chart, const std::vector<SvgSeries>& series) {
  SN_CHECK(!chart.x.empty(), "svg_line_chart: no points");
  const double right = 14, top = 44, bottom = 42;

  double y_min = INFINITY, y_max = -INFINITY;
  for (const SvgSeries& s : series) {
    SN_CHECK(s.y.size() == chart.x.size(), "svg_line_chart: series '{}' has {} values for {} x",
             s.name, s.y.size(), chart.x.size());
    for (double v : s.y)
      if (std::isfinite(v)) y_min = std::min(y_min, v), y_max = std::max(y_max, v);
  }
  if (!std::isfinite(y_min)) y_min = y_max = 0;
  if (chart.from_zero) y_min = std::min(0.0, y_min);
  const Axis ya = nice_axis(y_min, y_max, 4);
  std::vector<std::pair<double, std::string>> y_ticks;
  size_t widest = 1;
  for (double v = ya.lo; v <= ya.hi + ya.step * 1e-6; v += ya.step) {
    y_ticks.emplace_back(v, tick_label(v, ya.step));
    widest = std::max(widest, y_ticks.back().second.size());
  }
  // Room for the rotated y label and the widest tick label (about 6.5 px a character).
  const double left = 30 + 6.5 * static_cast<double>(widest);
  const double plot_w = chart.width - left - right, plot_h = chart.height - top - bottom;
  // Epochs are whole: the x step is at least 1; a single epoch sits in the middle.
  const double x_first = chart.x.front(), x_last = chart.x.back();
  Axis xa = nice_axis(x_first, x_last, std::min<int>(8, std::max<int>(1, x_last - x_first)));
  xa.step = std::max(1.0, xa.step);
  if (x_last == x_first)
    xa = {x_first - 1, x_first + 1, 1};
  else
    xa.lo = x_first, xa.hi = x_last;

  auto px = [&](double x) { return left + (x - xa.lo) / (xa.hi - xa.lo) * plot_w; };
  auto py = [&](double y) { return top + plot_h - (y - ya.lo) / (ya.hi - ya.lo) * plot_h; };

  std::string s = fmt::format(
      "<svg class=\"chart\" viewBox=\"0 0 {0} {1}\" width=\"{0}\" height=\"{1}\" role=\"img\" "
      "aria-label=\"{2}\">\n",
      chart.width, chart.height, html_escape(chart.title));
  s += fmt::format("<text class=\"title\" x=\"{}\" y=\"18\">{}</text>\n", 4,
                   html_escape(chart.title));
  // Legend: one entry per series on the row under the title, right-aligned.
  double lx = chart.width - right;
  for (auto it = series.rbegin(); it != series.rend(); ++it) {
    lx -= 6.5 * static_cast<double>(it->name.size()) + 34;
    s += fmt::format(
        "<g class=\"legend\"><line x1=\"{0}\" y1=\"32\" x2=\"{1}\" y2=\"32\" stroke=\"{2}\" "
        "stroke-width=\"2\"/><circle cx=\"{3}\" cy=\"32\" r=\"3\" fill=\"{2}\"/><text x=\"{4}\" "
        "y=\"36\">{5}</text></g>\n",
        lx, lx + 20, it->color, lx + 10, lx + 25, html_escape(it->name));
  }
  for (const auto& [v, label] : y_ticks) {
    const double y = py(v);
    s += fmt::format(
        "<line class=\"grid\" x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\"/><text "
        "class=\"tick\" x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        left, y, left + plot_w, left - 6, y + 4, label);
  }
  const double first_tick = std::ceil(xa.lo / xa.step - 1e-9) * xa.step;
  for (double v = first_tick; v <= xa.hi + 1e-9; v += xa.step)
    s += fmt::format(
        "<line class=\"axis\" x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\"/><text "
        "class=\"tick\" x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
        px(v), top + plot_h, top + plot_h + 4, top + plot_h + 17, tick_label(v, 1));
  s += fmt::format(
      "<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/><line class=\"axis\" "
      "x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\"/>\n",
      left, top, top + plot_h, left + plot_w);
  s += fmt::format(
      "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch</text>\n"
      "<text class=\"label\" transform=\"translate(14 {}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>\n",
      left + plot_w / 2, chart.height - 6, top + plot_h / 2, html_escape(chart.y_label));

  for (const SvgSeries& line : series) {
    std::string points, dots;
    for (size_t i = 0; i < chart.x.size(); ++i) {
      if (!std::isfinite(line.y[i])) continue;
      const double x = px(chart.x[i]), y = py(line.y[i]);
      points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x, y);
      dots += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}, epoch {}: "
          "{}</title></circle>\n",
          x, y, line.color, html_escape(line.name), value_label(chart.x[i]),
          value_label(line.y[i]));
    }
    if (points.empty()) continue;
    s += fmt::format(
        "<polyline class=\"series\" data-series=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"2\" stroke-linejoin=\"round\"/>\n",
        html_escape(line.name), points, line.color);
    s += dots;
  }
  return s + "</svg>";
}

std::string svg_heat_map(const std::vector<int64_t>& counts, int64_t k,
                         const std::vector<std::string>& names) {
  SN_CHECK(k > 0 && static_cast<int64_t>(counts.size()) == k * k,
           "svg_heat_map: {} counts for {} classes", counts.size(), k);
  size_t longest = 1;
  for (int64_t c = 0; c < k; ++c) longest = std::max(longest, class_label(names, c).size());
  const double cell = std::clamp(380.0 / static_cast<double>(k), 14.0, 40.0);
  const bool slanted = longest > 3;  // long column names are written at 45 degrees
  const double left = 26 + 6.5 * static_cast<double>(longest);
  const double top = 30 + (slanted ? 4.8 * static_cast<double>(longest) : 14);
  const double size = cell * static_cast<double>(k);
  const double width = left + size + 10, height = top + size + 10;

  int64_t max_error = 0;
  for (int64_t t = 0; t < k; ++t)
    for (int64_t p = 0; p < k; ++p)
      if (t != p) max_error = std::max(max_error, counts[t * k + p]);

  std::string s = fmt::format(
      "<svg class=\"heatmap\" viewBox=\"0 0 {0:.0f} {1:.0f}\" width=\"{0:.0f}\" "
      "height=\"{1:.0f}\" role=\"img\" aria-label=\"confusion matrix\">\n",
      width, height);
  s += fmt::format(
      "<text class=\"label\" x=\"{:.1f}\" y=\"12\" text-anchor=\"middle\">predicted</text>\n"
      "<text class=\"label\" transform=\"translate(10 {:.1f}) rotate(-90)\" "
      "text-anchor=\"middle\">true</text>\n",
      left + size / 2, top + size / 2);
  for (int64_t c = 0; c < k; ++c) {
    const std::string name = html_escape(class_label(names, c));
    const double centre = static_cast<double>(c) * cell + cell / 2;
    if (slanted)
      s += fmt::format(
          "<text class=\"tick\" transform=\"translate({:.1f} {:.1f}) rotate(-45)\">{}</text>\n",
          left + centre - 2, top - 6, name);
    else
      s += fmt::format(
          "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
          left + centre, top - 6, name);
    s += fmt::format(
        "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6,
        top + centre + 4, name);
  }
  for (int64_t t = 0; t < k; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < k; ++p) row += counts[t * k + p];
    for (int64_t p = 0; p < k; ++p) {
      const int64_t n = counts[t * k + p];
      const double shade =
          t == p ? (row ? static_cast<double>(n) / static_cast<double>(row) : 0)
                 : (max_error ? std::sqrt(static_cast<double>(n) / static_cast<double>(max_error))
                              : 0);
      const double x = left + static_cast<double>(p) * cell,
                   y = top + static_cast<double>(t) * cell;
      s += fmt::format(
          "<rect class=\"cell\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
          "fill=\"{}\" stroke=\"#ffffff\"><title>true {}, predicted {}: {}</title></rect>\n",
          x, y, cell, cell, mix(kWhite, t == p ? kBlue : kRed, shade),
          html_escape(class_label(names, t)), html_escape(class_label(names, p)), n);
      if (n > 0)
        s += fmt::format(
            "<text class=\"count\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" "
            "style=\"fill:{};font-size:{:.0f}px\">{}</text>\n",
            x + cell / 2, y + cell / 2 + 4, shade > 0.55 ? "#ffffff" : "#1d2330",
            std::min(11.0, cell * 0.32), n);
    }
  }
  return s + "</svg>";
}

std::string svg_filters(const ReportFilters& f) {
  const int64_t kk = f.kernel * f.kernel;
  SN_CHECK(f.out_channels > 0 && f.in_channels > 0 && f.kernel > 0 &&
               static_cast<int64_t>(f.weights.size()) == f.out_channels * f.in_channels * kk,
           "svg_filters: {} weights for ({}, {}, {}, {})", f.weights.size(), f.out_channels,
           f.in_channels, f.kernel, f.kernel);
  float scale = 0;
  for (float w : f.weights) scale = std::max(scale, std::abs(w));
  if (scale == 0) scale = 1;
  const double cell = std::max(3.0, 42.0 / static_cast<double>(f.kernel));
  const double kernel_px = cell * static_cast<double>(f.kernel);
  const double tile_w =
      kernel_px * static_cast<double>(f.in_channels) + 3.0 * static_cast<double>(f.in_channels - 1);
  const double gap = 10;
  const int64_t columns = std::min<int64_t>(8, f.out_channels);
  const int64_t rows = (f.out_channels + columns - 1) / columns;
  const double width = static_cast<double>(columns) * (tile_w + gap) - gap + 2;
  const double height = static_cast<double>(rows) * (kernel_px + gap) - gap + 2;

  std::string s = fmt::format(
      "<svg class=\"filters\" viewBox=\"0 0 {0:.0f} {1:.0f}\" width=\"{0:.0f}\" "
      "height=\"{1:.0f}\" role=\"img\" aria-label=\"first-layer filters\">\n",
      width, height);
  for (int64_t o = 0; o < f.out_channels; ++o) {
    const double x0 = 1 + static_cast<double>(o % columns) * (tile_w + gap);
    const double y0 = 1 + static_cast<double>(o / columns) * (kernel_px + gap);
    s += fmt::format("<g class=\"filter\"><title>filter {}</title>\n", o);
    for (int64_t c = 0; c < f.in_channels; ++c) {
      const float* w = f.weights.data() + (o * f.in_channels + c) * kk;
      const double cx = x0 + static_cast<double>(c) * (kernel_px + 3);
      for (int64_t i = 0; i < kk; ++i) {
        const double t = w[i] / scale;
        s += fmt::format(
            "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>",
            cx + static_cast<double>(i % f.kernel) * cell,
            y0 + static_cast<double>(i / f.kernel) * cell, cell, cell,
            t < 0 ? mix(kWhite, kBlue, -t) : mix(kWhite, kRed, t));
      }
      s += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
          "stroke=\"#8a93a3\"/>\n",
          cx, y0, kernel_px, kernel_px);
    }
    s += "</g>\n";
  }
  return s + "</svg>";
}

}  // namespace scratchnet
