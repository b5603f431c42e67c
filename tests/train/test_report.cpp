#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stb_image.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "scratchnet/model_spec.h"
#include "scratchnet/train/report.h"
#include "support/error.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;

int64_t count(const std::string& text, const std::string& what) {
  int64_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Every piece of `text` that follows `open` and ends before the next `close`, in order.
std::vector<std::string> between(const std::string& text, const std::string& open,
                                 const std::string& close) {
  std::vector<std::string> out;
  for (size_t at = text.find(open); at != std::string::npos; at = text.find(open, at)) {
    at += open.size();
    const size_t end = text.find(close, at);
    if (end == std::string::npos) break;
    out.push_back(text.substr(at, end - at));
  }
  return out;
}

// The text between the opening tag of the element with this id and the next </section>.
std::string section(const std::string& html, const std::string& id) {
  const size_t start = html.find("<section id=\"" + id + "\"");
  EXPECT_NE(start, std::string::npos) << "no section " << id;
  if (start == std::string::npos) return "";
  return html.substr(start, html.find("</section>", start) - start);
}

EpochMetrics epoch(int64_t e, double test_accuracy = 0.9) {
  return {.epoch = e,
          .train_loss = 1.0 / static_cast<double>(e),
          .train_accuracy = 0.8 + 0.01 * static_cast<double>(e),
          .test_loss = 0.5 / static_cast<double>(e),
          .test_accuracy = test_accuracy,
          .seconds = 2.5,
          .images_per_second = 800,
          .lr = 1e-3};
}

Report epochs_report(int64_t n) {
  Report r{.title = "basic on mnist", .recipe = "adam lr 0.001"};
  for (int64_t e = 1; e <= n; ++e) r.epochs.push_back(epoch(e));
  return r;
}

std::string base64_decode(const std::string& text) {
  const std::string digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int have = 0;
  for (char c : text) {
    if (c == '=') break;
    bits = bits << 6 | static_cast<uint32_t>(digits.find(c));
    have += 6;
    if (have >= 8) {
      have -= 8;
      out += static_cast<char>((bits >> have) & 0xff);
    }
  }
  return out;
}

TEST(Report, OneChartPointPerEpoch) {
  const std::string html = render_report_html(epochs_report(5));
  const std::string curves = section(html, "curves");
  // Loss and accuracy: train and test; learning rate: one line.
  EXPECT_THAT(between(curves, "data-series=\"", "\""),
              ElementsAre("train", "test", "train", "test", "lr"));
  for (const std::string& points : between(curves, "points=\"", "\"")) {
    std::istringstream pairs(points);
    std::string pair;
    int64_t n = 0;
    while (pairs >> pair) {
      EXPECT_THAT(pair, ::testing::MatchesRegex("[0-9.]+,[0-9.]+"));
      ++n;
    }
    EXPECT_EQ(n, 5) << points;
  }
  EXPECT_EQ(count(curves, "</circle>"),
            5 * 5);  // a point with its tooltip; legend dots close themselves
  EXPECT_THAT(curves, HasSubstr("<title>test, epoch 3: 0.1667</title>"));  // test loss 0.5 / 3
  EXPECT_THAT(curves, HasSubstr(">epoch</text>"));
  EXPECT_THAT(curves, HasSubstr(">accuracy (%)</text>"));
}

TEST(Report, ChartPointsGoUpWithTheValue) {
  // SVG's y grows downwards: a falling loss has rising y coordinates, epochs rising x.
  const std::string curves = section(render_report_html(epochs_report(4)), "curves");
  std::istringstream pairs(between(curves, "points=\"", "\"").at(0));  // train loss
  std::string pair;
  double last_x = -1, last_y = -1;
  while (pairs >> pair) {
    const double x = std::stod(pair.substr(0, pair.find(','))),
                 y = std::stod(pair.substr(pair.find(',') + 1));
    EXPECT_GT(x, last_x);
    EXPECT_GT(y, last_y);
    last_x = x, last_y = y;
  }
}

TEST(Report, WithoutATestSetOnlyTrainLinesAreDrawn) {
  Report r = epochs_report(3);
  for (EpochMetrics& m : r.epochs) m.test_loss = m.test_accuracy = NAN;
  const std::string html = render_report_html(r);
  EXPECT_THAT(between(section(html, "curves"), "data-series=\"", "\""),
              ElementsAre("train", "train", "lr"));
  EXPECT_THAT(section(html, "confusion"), HasSubstr("No test evaluation yet."));
  EXPECT_THAT(section(html, "recipe"), HasSubstr("<td>–</td>"));
  EXPECT_THAT(html, Not(HasSubstr("nan")));
}

TEST(Report, HeadlineGivesTheFinalAndBestAccuracyAndTime) {
  Report r = epochs_report(3);
  r.epochs[0].test_accuracy = 0.95;
  r.epochs[1].test_accuracy = 0.99;
  r.epochs[2].test_accuracy = 0.98;
  const std::string html = render_report_html(r);
  EXPECT_THAT(html, HasSubstr("test accuracy <strong>98.00%</strong> after 3 epochs · best 99.00% "
                              "after epoch 2 · 7.5 s of training"));
  EXPECT_THAT(section(html, "recipe"),
              HasSubstr("<td>1</td><td>1.0000</td><td>81.00%</td><td>0.5000</td><td>95.00%</td>"
                        "<td>0.001</td><td>2.5 s</td><td>800</td>"));
  EXPECT_THAT(section(html, "recipe"), HasSubstr("<td>total</td>"));
}

TEST(Report, HeatMapHasACellPerPairWithItsCount) {
  Report r = epochs_report(1);
  r.classes = 3;
  r.class_names = {"cat", "dog"};  // the third class shows its index
  r.confusion = {5, 1, 0,          //
                 2, 7, 3,          //
                 0, 0, 9};
  const std::string heat = section(render_report_html(r), "confusion");
  EXPECT_EQ(count(heat, "<rect class=\"cell\""), 9);
  EXPECT_THAT(between(heat, "<title>true ", "</title>"),
              ElementsAre("cat, predicted cat: 5", "cat, predicted dog: 1", "cat, predicted 2: 0",
                          "dog, predicted cat: 2", "dog, predicted dog: 7", "dog, predicted 2: 3",
                          "2, predicted cat: 0", "2, predicted dog: 0", "2, predicted 2: 9"));
  // Counts written in the cells: the non-zero ones.
  std::vector<std::string> counts;
  for (const std::string& text : between(heat, "class=\"count\"", "</text>"))
    counts.push_back(text.substr(text.find('>') + 1));
  EXPECT_THAT(counts, ElementsAre("5", "1", "2", "7", "3", "9"));
  // The most frequent error is full red, a row all right full blue.
  EXPECT_THAT(heat, HasSubstr("fill=\"#b2182b\" stroke=\"#ffffff\"><title>true dog, predicted 2"));
  EXPECT_THAT(heat, HasSubstr("fill=\"#2166ac\" stroke=\"#ffffff\"><title>true 2, predicted 2"));
  EXPECT_THAT(heat, HasSubstr("The 27 test images after epoch 1"));
  EXPECT_THAT(heat, HasSubstr("21 on the diagonal"));
}

TEST(Report, TextIsEscaped) {
  Report r = epochs_report(2);
  r.title = "run \"A\" & <b>B</b>";
  r.recipe = "<script>alert('x')</script>";
  r.classes = 2;
  r.class_names = {"<i>", "T-shirt/top"};
  r.confusion = {1, 0, 0, 1};
  const std::string html = render_report_html(r);
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("<i>")));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
  EXPECT_THAT(html, HasSubstr("<h1>run &quot;A&quot; &amp; &lt;b&gt;B&lt;/b&gt;</h1>"));
  EXPECT_THAT(html, HasSubstr("<title>true &lt;i&gt;, predicted T-shirt/top: 0</title>"));
}

TEST(Report, IsSelfContained) {
  Report r = epochs_report(3);
  r.mistakes = {{.index = 4,
                 .label = 1,
                 .predicted = 7,
                 .confidence = 0.9f,
                 .height = 2,
                 .width = 2,
                 .pixels = {0, 255, 128, 0}}};
  r.filters = {.layer = "layer 0 Conv2d",
               .out_channels = 1,
               .in_channels = 1,
               .kernel = 1,
               .weights = {0.5f}};
  const std::string html = render_report_html(r);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_THAT(html, HasSubstr("</html>\n"));
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("<link")));
  EXPECT_THAT(html, Not(HasSubstr("url(")));
  EXPECT_THAT(html, Not(HasSubstr("@import")));
  EXPECT_TRUE(between(html, "href=\"", "\"").empty());
  const std::vector<std::string> refs = between(html, "src=\"", "\"");
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].rfind("data:image/png;base64,", 0), 0u);
}

TEST(Report, MistakesAreEmbeddedAsDarkInkOnLightPaper) {
  Report r = epochs_report(1);
  r.classes = 10;
  r.class_names = {"zero", "one", "two", "three", "four", "five", "six", "seven"};
  r.mistakes = {{.index = 12,
                 .label = 3,
                 .predicted = 8,
                 .confidence = 0.875f,
                 .height = 2,
                 .width = 3,
                 .pixels = {0, 255, 10, 20, 30, 40}},
                {.index = 7,
                 .label = 1,
                 .predicted = 7,
                 .confidence = 0.5f,
                 .height = 1,
                 .width = 1,
                 .pixels = {0}}};
  const std::string html = section(render_report_html(r), "mistakes");
  EXPECT_EQ(count(html, "<figure class=\"mistake\">"), 2);
  EXPECT_THAT(html, HasSubstr("three → <span class=\"wrong\">8</span> 87.5%"));
  EXPECT_THAT(html, HasSubstr("#12"));
  const std::vector<std::string> uris = between(html, "src=\"data:image/png;base64,", "\"");
  ASSERT_EQ(uris.size(), 2u);
  const std::string png = base64_decode(uris[0]);
  int w = 0, h = 0, c = 0;
  stbi_uc* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(png.data()),
                                      static_cast<int>(png.size()), &w, &h, &c, 1);
  ASSERT_NE(px, nullptr) << stbi_failure_reason();
  EXPECT_EQ(w, 3);
  EXPECT_EQ(h, 2);
  EXPECT_THAT(std::vector<int>(px, px + 6), ElementsAre(255, 0, 245, 235, 225, 215));
  stbi_image_free(px);
}

TEST(Report, FiltersHaveAWeightRectEach) {
  Report r = epochs_report(1);
  r.filters = {
      .layer = "layer 0 Conv2d(2, 3, kernel=2)", .out_channels = 3, .in_channels = 2, .kernel = 2};
  for (int i = 0; i < 3 * 2 * 4; ++i) r.filters.weights.push_back(static_cast<float>(i - 12));
  const std::string html = section(render_report_html(r), "filters");
  EXPECT_EQ(count(html, "<g class=\"filter\">"), 3);
  EXPECT_EQ(count(html, "<rect "), 3 * 2 * 4 + 3 * 2);  // weights, plus a frame per kernel
  EXPECT_EQ(count(html, "fill=\"#2166ac\""), 1);        // -12, the largest |w|: full blue
  EXPECT_EQ(count(html, "fill=\"#ffffff\""), 1);        // 0
  EXPECT_THAT(html, HasSubstr("3 filters of 2×2, 2 input channels side by side"));
  EXPECT_THAT(html, HasSubstr("±12."));
}

TEST(Report, EmptyAndOneEpochReportsRender) {
  const std::string empty = render_report_html(Report{});
  EXPECT_THAT(empty, HasSubstr("No epoch has finished yet."));
  for (const char* id : {"curves", "confusion", "mistakes", "filters", "recipe"})
    EXPECT_THAT(empty, HasSubstr(fmt::format("<section id=\"{}\">", id)));
  EXPECT_THAT(empty, Not(HasSubstr("<svg")));

  const std::string one = render_report_html(epochs_report(1));
  EXPECT_THAT(one, HasSubstr("after 1 epoch ·"));
  for (const std::string& points : between(one, "points=\"", "\""))
    EXPECT_THAT(points, ::testing::MatchesRegex("[0-9.]+,[0-9.]+")) << "one point";
  // A single epoch sits in the middle of its x axis, with its tick.
  EXPECT_THAT(one, HasSubstr("text-anchor=\"middle\">1</text>"));
}

TEST(Report, BadShapesAreErrors) {
  Report r;
  r.classes = 3;
  r.confusion = {1, 2, 3, 4};
  EXPECT_THAT(error_of([&] { render_report_html(r); }),
              HasSubstr("render_report_html: a confusion matrix of 4 counts for 3 classes"));
  Report m;
  m.mistakes = {{.index = 5, .height = 28, .width = 28, .pixels = {1, 2}}};
  EXPECT_THAT(error_of([&] { render_report_html(m); }),
              HasSubstr("test image 5 has 2 pixels for 28x28"));
}

TEST(Report, WrittenAtomically) {
  TempDir dir;
  const std::string path = dir / "report.html";
  Report r = epochs_report(2);
  write_report(path, r);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), render_report_html(r));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  // A failed write leaves the previous report whole.
  r.classes = 2;
  r.confusion = {1};
  EXPECT_THAT(error_of([&] { write_report(path, r); }), HasSubstr("confusion matrix"));
  std::ifstream again(path);
  std::stringstream kept;
  kept << again.rdbuf();
  EXPECT_EQ(kept.str(), text.str());
  EXPECT_THAT(error_of([&] { write_report(dir / "missing/report.html", epochs_report(1)); }),
              HasSubstr("missing/report.html: cannot write"));
}

TEST(Report, MostConfidentMistakes) {
  Dataset set{.source = "toy", .height = 1, .width = 2};
  set.labels = {0, 1, 2, 1, 0, 2};
  set.class_names = {"0", "1", "2"};
  for (uint8_t i = 0; i < 6; ++i) set.images.insert(set.images.end(), {i, uint8_t(i * 10)});
  EvalResult e{.count = 6, .classes = 3};
  e.predicted = {0, 2, 1, 0, 0, 0};  // items 1, 2, 3 and 5 are wrong
  e.confidence = {0.99f, 0.6f, 0.8f, 0.6f, 0.9f, 0.7f};
  std::vector<ReportImage> top = most_confident_mistakes(e, set, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].index, 2);
  EXPECT_EQ(top[1].index, 5);
  EXPECT_EQ(top[2].index, 1);  // ties with 3: the lower index first
  EXPECT_EQ(top[0].label, 2);
  EXPECT_EQ(top[0].predicted, 1);
  EXPECT_FLOAT_EQ(top[0].confidence, 0.8f);
  EXPECT_EQ(top[0].height, 1);
  EXPECT_EQ(top[0].width, 2);
  EXPECT_THAT(top[0].pixels, ElementsAre(2, 20));
  EXPECT_EQ(most_confident_mistakes(e, set, 10).size(), 4u);
  EXPECT_TRUE(most_confident_mistakes(e, set, 0).empty());

  e.count = 5;
  EXPECT_THAT(error_of([&] { most_confident_mistakes(e, set, 3); }),
              HasSubstr("an evaluation of 5 items does not match toy (6 items)"));
}

TEST(Report, FirstConvFilters) {
  Sequential dense = model_from_spec(R"({"input": [1, 8, 8], "layers": [
    {"type": "Flatten"}, {"type": "Linear", "out_features": 64}, {"type": "ReLU"},
    {"type": "Linear", "out_features": 2}]})");
  EXPECT_EQ(first_conv_filters(dense).out_channels, 0);

  Sequential m = model_from_spec(R"({"input": [2, 8, 8], "layers": [
    {"type": "ReLU"}, {"type": "Conv2d", "out_channels": 4, "kernel": 3},
    {"type": "Conv2d", "out_channels": 5, "kernel": 1}]})");
  m.init(Init::kPyTorch, 1);
  ReportFilters f = first_conv_filters(m);
  EXPECT_EQ(f.out_channels, 4);
  EXPECT_EQ(f.in_channels, 2);
  EXPECT_EQ(f.kernel, 3);
  EXPECT_EQ(f.layer, "layer 1 Conv2d(2, 4, kernel=3, stride=1, padding=0)");
  EXPECT_EQ(f.weights, m.params()[0].param->value.to_vector());
}

}  // namespace
}  // namespace scratchnet
