// report_svg.h — the training report's drawings as inline SVG (private to src/): line charts
// per epoch, the confusion matrix as a heat map, and convolution filters as tiles.
//
// Each function returns one <svg> element with a viewBox and no xmlns (it is meant to sit inside
// an HTML page), whose text is HTML-escaped. Sizes are in CSS pixels at 100% zoom.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/train/report.h"

namespace scratchnet {

// One line of a chart: a value per x of the chart; NaN leaves the point out.
struct SvgSeries {
  std::string name;   // legend text
  std::string color;  // CSS colour of the line, its points and its legend entry
  std::vector<double> y;
};

struct SvgChart {
  std::string title;       // above the plot, left
  std::string y_label;     // beside the y axis
  std::vector<double> x;   // (points) epochs, increasing; at least one
  bool from_zero = false;  // the y axis starts at 0 (losses, learning rates)
  int width = 380, height = 250;
};

// A line chart: axes with "nice" ticks (1, 2 or 5 times a power of ten), grid lines, the x axis
// labelled "epoch", a legend, and per series one <polyline> with a point for each non-NaN value
// plus a <circle> per point whose <title> gives the value.
std::string svg_line_chart(const SvgChart& chart, const std::vector<SvgSeries>& series);

// The confusion matrix counts (k, k) [true][predicted] as k×k <rect class="cell"> with a <title>
// "true A, predicted B: N" and the count written in the cell when it is not 0. Diagonal cells
// are blue by the share of their row predicted right; the others red by their count relative to
// the largest error count, so rare confusions stay visible. names[c] labels class c (its index
// when names is shorter).
std::string svg_heat_map(const std::vector<int64_t>& counts, int64_t k,
                         const std::vector<std::string>& names);

// One tile per output channel (in_channels kernels side by side), up to 8 tiles a row; a
// weight is a <rect> coloured blue (negative), white (0) or red (positive) on a scale of the
// largest |weight| of the layer.
std::string svg_filters(const ReportFilters& filters);

}  // namespace scratchnet
