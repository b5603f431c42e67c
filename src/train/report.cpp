#include "scratchnet/train/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "report_html.h"
#include "report_svg.h"
#include "scratchnet/check.h"
#include "scratchnet/io/atomic_file.h"
#include "scratchnet/layers/conv2d.h"

namespace scratchnet {

namespace {

std::string percent(double fraction) {
  return std::isfinite(fraction) ? fmt::format("{:.2f}%", fraction * 100) : "–";
}

std::string number(double v, const char* format) {
  return std::isfinite(v) ? fmt::format(fmt::runtime(format), v) : "–";
}

// "12.3 s", "4:05", "1:02:03".
std::string duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s < 3600) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

std::string class_name(const Report& r, int64_t c) {
  return c < static_cast<int64_t>(r.class_names.size()) ? r.class_names[c] : std::to_string(c);
}

std::string empty_note(std::string_view text) {
  return fmt::format("<p class=\"empty\">{}</p>\n", html_escape(text));
}

std::string header(const Report& r) {
  std::string s = fmt::format("<header>\n<h1>{}</h1>\n", html_escape(r.title));
  if (r.epochs.empty()) {
    s += "<p class=\"headline\">No epoch has finished yet.</p>\n";
  } else {
    const EpochMetrics& last = r.epochs.back();
    // The first epoch with the highest test accuracy; NaN (no test set) counts as lowest.
    const auto best = std::max_element(
        r.epochs.begin(), r.epochs.end(), [](const EpochMetrics& a, const EpochMetrics& b) {
          return std::isnan(a.test_accuracy) ? !std::isnan(b.test_accuracy)
                                             : a.test_accuracy < b.test_accuracy;
        });
    double seconds = 0;
    for (const EpochMetrics& m : r.epochs) seconds += m.seconds;
    s += fmt::format("<p class=\"headline\">test accuracy <strong>{}</strong> after {} epoch{}",
                     percent(last.test_accuracy), last.epoch, last.epoch == 1 ? "" : "s");
    if (std::isfinite(best->test_accuracy) && best->epoch != last.epoch)
      s += fmt::format(" · best {} after epoch {}", percent(best->test_accuracy), best->epoch);
    s += fmt::format(" · {} of training</p>\n", duration(seconds));
  }
  for (const std::string* line : {&r.model, &r.dataset})
    if (!line->empty()) s += fmt::format("<p>{}</p>\n", html_escape(*line));
  return s + "</header>\n";
}

bool has_validation(const Report& r) {
  return std::any_of(r.epochs.begin(), r.epochs.end(),
                     [](const EpochMetrics& m) { return !std::isnan(m.val_accuracy); });
}

std::string curves(const Report& r) {
  std::string s = "<section id=\"curves\">\n<h2>Training curves</h2>\n";
  if (r.epochs.empty()) return s + empty_note("No epoch has finished yet.") + "</section>\n";
  std::vector<double> x, train_loss, test_loss, val_loss, train_acc, test_acc, val_acc, lr;
  for (const EpochMetrics& m : r.epochs) {
    x.push_back(static_cast<double>(m.epoch));
    train_loss.push_back(m.train_loss);
    test_loss.push_back(m.test_loss);
    val_loss.push_back(m.val_loss);
    train_acc.push_back(m.train_accuracy * 100);
    test_acc.push_back(m.test_accuracy * 100);
    val_acc.push_back(m.val_accuracy * 100);
    lr.push_back(m.lr);
  }
  const std::string train = "#1f6fb4", test = "#e8710a";
  std::vector<SvgSeries> losses = {{"train", train, train_loss}, {"test", test, test_loss}},
                         accuracies = {{"train", train, train_acc}, {"test", test, test_acc}};
  if (has_validation(r)) {
    losses.push_back({"validation", "#7b3fa0", val_loss});
    accuracies.push_back({"validation", "#7b3fa0", val_acc});
  }
  s += "<div class=\"charts\">\n";
  s += svg_line_chart({.title = "Loss", .y_label = "cross-entropy", .x = x, .from_zero = true},
                      losses);
  s += "\n";
  s += svg_line_chart({.title = "Accuracy", .y_label = "accuracy (%)", .x = x}, accuracies);
  s += "\n";
  s += svg_line_chart({.title = "Learning rate", .y_label = "lr", .x = x, .from_zero = true},
                      {{"lr", "#2a9d5c", lr}});
  s += "\n</div>\n<p class=\"muted\">Train values are means over each epoch's batches while it "
       "trained; test (and validation) values are measured after the epoch. The learning rate is "
       "the one the "
       "epoch's steps used (its last step's with a per-step schedule).</p>\n";
  return s + "</section>\n";
}

std::string confusion(const Report& r) {
  std::string s = "<section id=\"confusion\">\n<h2>Confusion matrix</h2>\n";
  if (r.confusion.empty()) return s + empty_note("No test evaluation yet.") + "</section>\n";
  int64_t total = 0, correct = 0;
  for (int64_t t = 0; t < r.classes; ++t)
    for (int64_t p = 0; p < r.classes; ++p) {
      total += r.confusion[t * r.classes + p];
      if (t == p) correct += r.confusion[t * r.classes + p];
    }
  s += "<div class=\"row\">\n" + svg_heat_map(r.confusion, r.classes, r.class_names) + "\n";
  s += fmt::format(
      "<p class=\"muted\" style=\"max-width:360px\">The {} test images{}: a row per true class, a "
      "column per predicted one; {} on the diagonal are right. Diagonal cells are shaded blue by "
      "the share of their row predicted right, the others red by how often that mistake is made "
      "(darkest: the most frequent).</p>\n</div>\n",
      total, r.epochs.empty() ? "" : fmt::format(" after epoch {}", r.epochs.back().epoch),
      correct);
  return s + "</section>\n";
}

std::string mistakes(const Report& r) {
  std::string s = "<section id=\"mistakes\">\n<h2>Most confidently wrong</h2>\n";
  if (r.mistakes.empty()) return s + empty_note("No test image is wrong.") + "</section>\n";
  s += "<p class=\"muted\">The test images the model got wrong with the highest confidence in its "
       "answer: the true class, then the predicted one and its probability.</p>\n";
  s += "<div class=\"mistakes\">\n";
  std::vector<uint8_t> ink;  // (height, width) dark ink on light paper
  for (const ReportImage& m : r.mistakes) {
    SN_CHECK(
        m.height > 0 && m.width > 0 && static_cast<int64_t>(m.pixels.size()) == m.height * m.width,
        "render_report_html: test image {} has {} pixels for {}x{}", m.index, m.pixels.size(),
        m.height, m.width);
    ink.resize(m.pixels.size());
    std::transform(m.pixels.begin(), m.pixels.end(), ink.begin(),
                   [](uint8_t p) { return static_cast<uint8_t>(255 - p); });
    s += fmt::format(
        "<figure class=\"mistake\"><img src=\"{}\" width=\"84\" height=\"84\" alt=\"test image "
        "{}\"><figcaption>{} → <span class=\"wrong\">{}</span> {:.1f}%<br><span "
        "class=\"muted\">#{}</span></figcaption></figure>\n",
        png_data_uri(ink.data(), m.height, m.width), m.index, html_escape(class_name(r, m.label)),
        html_escape(class_name(r, m.predicted)), m.confidence * 100, m.index);
  }
  return s + "</div>\n</section>\n";
}

std::string filters(const Report& r) {
  std::string s = "<section id=\"filters\">\n<h2>First-layer filters</h2>\n";
  const ReportFilters& f = r.filters;
  if (f.out_channels == 0) return s + empty_note("The model has no convolution.") + "</section>\n";
  float scale = 0;
  for (float w : f.weights) scale = std::max(scale, std::abs(w));
  s += svg_filters(f) + "\n";
  s += fmt::format(
      "<p class=\"muted\">{}: {} filters of {}×{}{}. Blue is negative, white 0, red positive; "
      "the darkest shades are ±{:.3g}.</p>\n",
      html_escape(f.layer), f.out_channels, f.kernel, f.kernel,
      f.in_channels > 1 ? fmt::format(", {} input channels side by side", f.in_channels) : "",
      scale);
  return s + "</section>\n";
}

std::string recipe(const Report& r) {
  std::string s = "<section id=\"recipe\">\n<h2>Recipe and timings</h2>\n<dl>\n";
  auto item = [&](const char* name, const std::string& value) {
    if (!value.empty()) s += fmt::format("<dt>{}</dt><dd>{}</dd>\n", name, html_escape(value));
  };
  item("model", r.model);
  item("data", r.dataset);
  item("recipe", r.recipe);
  item("threads", r.threads > 0 ? std::to_string(r.threads) : "");
  s += "</dl>\n";
  if (!r.epochs.empty()) {
    const bool val = has_validation(r);
    s += fmt::format(
        "<table class=\"epochs\">\n<thead><tr><th>epoch</th><th>train loss</th><th>train "
        "accuracy</th>{}<th>test loss</th><th>test accuracy</th><th>lr</th><th>time</th>"
        "<th>images/s</th></tr></thead>\n<tbody>\n",
        val ? "<th>validation loss</th><th>validation accuracy</th>" : "");
    double seconds = 0, images = 0;
    for (const EpochMetrics& m : r.epochs) {
      seconds += m.seconds;
      images += m.seconds * m.images_per_second;
      s += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
          "<td>{}</td></tr>\n",
          m.epoch, number(m.train_loss, "{:.4f}"), percent(m.train_accuracy),
          val ? fmt::format("<td>{}</td><td>{}</td>", number(m.val_loss, "{:.4f}"),
                            percent(m.val_accuracy))
              : "",
          number(m.test_loss, "{:.4f}"), percent(m.test_accuracy), number(m.lr, "{:.4g}"),
          duration(m.seconds), number(m.images_per_second, "{:.0f}"));
    }
    s += fmt::format(
        "</tbody>\n<tfoot><tr><td>total</td><td></td><td></td>{}<td></td><td></td><td></td>"
        "<td>{}</td><td>{}</td></tr></tfoot>\n</table>\n<p class=\"muted\">Times are training "
        "only (the test evaluation after each epoch is not counted).</p>\n",
        val ? "<td></td><td></td>" : "", duration(seconds),
        number(seconds > 0 ? images / seconds : NAN, "{:.0f}"));
  }
  if (!r.layers.empty()) s += fmt::format("<pre>{}</pre>\n", html_escape(r.layers));
  return s + "</section>\n";
}

}  // namespace

std::vector<ReportImage> most_confident_mistakes(const EvalResult& eval, const Dataset& set,
                                                 int64_t k) {
  SN_CHECK(eval.count == set.size() && eval.predicted.size() == eval.confidence.size() &&
               static_cast<int64_t>(eval.predicted.size()) == eval.count,
           "most_confident_mistakes: an evaluation of {} items does not match {} ({} items)",
           eval.count, set.source, set.size());
  std::vector<int64_t> wrong;
  for (int64_t i = 0; i < eval.count; ++i)
    if (eval.predicted[i] != set.labels[i]) wrong.push_back(i);
  const auto n = std::min<int64_t>(std::max<int64_t>(k, 0), static_cast<int64_t>(wrong.size()));
  std::partial_sort(wrong.begin(), wrong.begin() + n, wrong.end(), [&](int64_t a, int64_t b) {
    return eval.confidence[a] != eval.confidence[b] ? eval.confidence[a] > eval.confidence[b]
                                                    : a < b;
  });
  std::vector<ReportImage> out;
  const int64_t plane = set.height * set.width;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = wrong[j];
    const uint8_t* first = set.image(i);  // the first channel
    out.push_back({.index = i,
                   .label = set.labels[i],
                   .predicted = eval.predicted[i],
                   .confidence = eval.confidence[i],
                   .height = set.height,
                   .width = set.width,
                   .pixels = std::vector<uint8_t>(first, first + plane)});
  }
  return out;
}

ReportFilters first_conv_filters(Sequential& model) {
  for (size_t i = 0; i < model.size(); ++i) {
    auto* conv = dynamic_cast<Conv2d*>(&model.layer(i));
    if (conv == nullptr) continue;
    const Conv2dOptions& o = conv->options();
    return {.layer = fmt::format("layer {} {}", i, conv->describe()),
            .out_channels = o.out_channels,
            .in_channels = o.in_channels,
            .kernel = o.kernel,
            .weights = conv->weight().value.to_vector()};
  }
  return {};
}

std::string render_report_html(const Report& r) {
  SN_CHECK(r.confusion.empty() ||
               (r.classes > 0 && static_cast<int64_t>(r.confusion.size()) == r.classes * r.classes),
           "render_report_html: a confusion matrix of {} counts for {} classes", r.confusion.size(),
           r.classes);
  std::string s = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta "
      "name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} — training "
      "report</title>\n<style>{}</style>\n</head>\n<body>\n<main>\n",
      html_escape(r.title), report_css());
  s += header(r) + curves(r) + confusion(r) + mistakes(r) + filters(r) + recipe(r);
  return s + "</main>\n</body>\n</html>\n";
}

void write_report(const std::string& path, const Report& report) {
  write_text_atomic(path, render_report_html(report));
}

}  // namespace scratchnet
