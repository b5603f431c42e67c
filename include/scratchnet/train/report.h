// report.h — the training report: one self-contained HTML page a person opens in a browser.
//
//   Report r{.title = "basic on mnist", .epochs = trainer.history(), ...};
//   r.classes = trainer.last_test().classes;
//   r.confusion = trainer.last_test().confusion;
//   r.mistakes = most_confident_mistakes(trainer.last_test(), test_set, 16);
//   r.filters = first_conv_filters(model);
//   write_report("runs/basic/report.html", r);
//
// The page shows, in this order: the run's title and final test accuracy; loss, accuracy and
// learning-rate curves per epoch (train, test, and validation when the run has a validation set,
// also in the epoch table); the confusion matrix as a heat map; the
// test images the model got wrong with the highest confidence; the first convolution's
// filters; the recipe, the model's layers and a table of every epoch with its timings.
// Charts, heat map and filters are inline SVG, images are PNG data: URIs and the CSS is inline:
// the file loads nothing else and needs no JavaScript. All text is HTML-escaped. Any part may
// be empty (no epochs yet, no test set, no Conv2d layer); its section then says so.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/data/dataset.h"
#include "scratchnet/model.h"
#include "scratchnet/train/evaluate.h"
#include "scratchnet/train/trainer.h"

namespace scratchnet {

// A test image the model got wrong.
struct ReportImage {
  int64_t index = 0;  // its position in the test set
  int32_t label = 0, predicted = 0;
  float confidence = 0;  // the predicted class's probability
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;  // (height, width), 0 background, 255 ink (the first channel)
};

// The weights of a convolution, for drawing.
struct ReportFilters {
  std::string layer;  // "0 Conv2d(1, 32, kernel=3, stride=1, padding=0)"
  int64_t out_channels = 0, in_channels = 0, kernel = 0;
  std::vector<float> weights;  // (out_channels, in_channels, kernel, kernel)
};

struct Report {
  std::string title;                 // "basic on mnist"
  std::string model;                 // one line: "basic, 225,034 parameters, 1.1 MFLOP per image"
  std::string dataset;               // one line: "mnist: 60000 training and 10000 test images"
  std::string recipe;                // one line, as `scratchnet train` prints it
  std::string layers;                // Sequential::summary(), shown as preformatted text
  int64_t threads = 0;               // 0: not shown
  std::vector<EpochMetrics> epochs;  // in order, as Trainer::history()
  int64_t classes = 0;               // K
  std::vector<std::string> class_names;  // K names; a class without one shows its index
  std::vector<int64_t> confusion;        // (K, K) [true][predicted] on the test set, or empty
  std::vector<ReportImage> mistakes;     // most confident first
  ReportFilters filters;                 // out_channels 0: no convolution
};

// The k wrong predictions of `eval` (an evaluation of `set`, items in order) with the highest
// confidence, most confident first; ties keep the lower index first. Fewer when fewer are wrong.
std::vector<ReportImage> most_confident_mistakes(const EvalResult& eval, const Dataset& set,
                                                 int64_t k);

// The weights of the model's first Conv2d layer (out_channels 0 when it has none).
ReportFilters first_conv_filters(Sequential& model);

// The whole page, from <!DOCTYPE html> to </html>. Throws when confusion is neither empty nor
// (classes, classes), or a filter's or image's size does not match its pixels.
std::string render_report_html(const Report& report);

// Renders the report and writes it atomically (atomic_file.h): a reader never sees half a page.
void write_report(const std::string& path, const Report& report);

}  // namespace scratchnet
