// The HTTP server (apps/server): every route, every error status, the limits, and that its
// answers are the classifier's, over real loopback connections.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <stb_image_write.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "scratchnet/presets.h"
#include "server/metrics.h"
#include "server/server.h"
#include "support/error.h"

namespace scratchnet::server {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

LoadedModel untrained_basic() {
  LoadedModel m{make_preset("basic"), {}};
  m.model.init(Init::kPyTorch, 1);
  for (int c = 0; c < 10; ++c) m.info.class_names.push_back(std::to_string(c));
  return m;
}

// A dark "1" on light 100x80 paper, off-centre: what a person sends.
std::vector<uint8_t> drawn_one() {
  std::vector<uint8_t> px(100 * 80, 235);
  for (int y = 15; y < 85; ++y)
    for (int x = 50; x < 58; ++x) px[y * 80 + x] = 20;
  return px;
}

std::string encode(const std::vector<uint8_t>& px, int w, int h, bool jpeg) {
  std::string out;
  auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size);
  };
  const int ok = jpeg ? stbi_write_jpg_to_func(append, &out, w, h, 1, px.data(), 90)
                      : stbi_write_png_to_func(append, &out, w, h, 1, px.data(), w);
  EXPECT_TRUE(ok);
  return out;
}

std::string pixels_json(const std::vector<uint8_t>& digit) { return json(digit).dump(); }

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    options.port = 0;
    server_ = std::make_unique<Server>(classifier_, "basic.safetensors", options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    for (int i = 0; i < 200 && !client_->Get("/healthz"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  void TearDown() override {
    if (!server_) return;
    server_->stop();
    thread_.join();
  }

  // POSTs `body` to /predict; returns the status and the parsed JSON answer.
  std::pair<int, json> predict(const std::string& body, const std::string& path = "/predict") {
    auto res = client_->Post(path.c_str(), body, "application/octet-stream");
    if (!res) return {-1, json()};
    return {res->status, json::parse(res->body)};
  }

  std::vector<double> direct(const std::vector<uint8_t>& digit) {
    std::vector<double> p;
    reference_.probabilities(p, digit);
    return p;
  }

  Classifier classifier_{untrained_basic(), "basic"};
  Classifier reference_{untrained_basic(), "basic"};  // the same model, called directly
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};

TEST_F(ServerTest, HealthzDescribesTheModel) {
  start();
  auto res = client_->Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const json h = json::parse(res->body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["model"], "basic.safetensors");
  EXPECT_EQ(h["classes"], 10);
  EXPECT_EQ(h["class_names"][3], "3");
  EXPECT_EQ(h["input"], json({1, 28, 28}));
}

TEST_F(ServerTest, PageIsTheDrawingPad) {
  start();
  auto res = client_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(res->body, HasSubstr("<canvas id=\"pad\""));
  EXPECT_THAT(res->body, HasSubstr("</html>"));
}

TEST_F(ServerTest, JsonPixelsGiveTheClassifiersProbabilities) {
  start();
  std::vector<uint8_t> digit(28 * 28);
  for (size_t i = 0; i < digit.size(); ++i) digit[i] = static_cast<uint8_t>((i * 37) % 256);
  const std::vector<double> want = direct(digit);
  for (const std::string& body :
       {pixels_json(digit), json{{"pixels", digit}}.dump(), " \n" + pixels_json(digit)}) {
    auto [status, r] = predict(body);
    ASSERT_EQ(status, 200) << r.dump();
    ASSERT_EQ(r["probabilities"].size(), 10u);
    for (int c = 0; c < 10; ++c) EXPECT_DOUBLE_EQ(r["probabilities"][c].get<double>(), want[c]);
    const int64_t best = std::max_element(want.begin(), want.end()) - want.begin();
    EXPECT_EQ(r["label"], best);
    EXPECT_EQ(r["class"], std::to_string(best));
    EXPECT_EQ(r["top"].size(), 3u);
    EXPECT_EQ(r["top"][0]["label"], best);
    EXPECT_GT(r["latency_ms"].get<double>(), 0);
    EXPECT_FALSE(r.contains("digit"));
  }
}

TEST_F(ServerTest, ImagesAreMadeMnistStyleAsPredictDoes) {
  start();
  std::vector<uint8_t> digit;
  Image image{"one", 100, 80, 1, drawn_one()};
  to_mnist_style(digit, image, classifier_.style());
  const std::vector<double> want = direct(digit);
  for (bool jpeg : {false, true}) {
    auto [status, r] = predict(encode(drawn_one(), 80, 100, jpeg), "/predict?digit=1");
    ASSERT_EQ(status, 200) << r.dump();
    ASSERT_EQ(r["digit"].size(), 784u);
    if (!jpeg) {  // JPEG's losses move pixels a little; PNG is exact
      EXPECT_EQ(r["digit"].get<std::vector<uint8_t>>(), digit);
      for (int c = 0; c < 10; ++c) EXPECT_DOUBLE_EQ(r["probabilities"][c].get<double>(), want[c]);
    }
  }
}

TEST_F(ServerTest, MalformedBodiesAre400WithAReason) {
  start();
  std::vector<uint8_t> blank(64 * 64, 255);
  std::string jpeg = encode(drawn_one(), 80, 100, true);
  // A PNG whose header claims 100000 x 100000 pixels: refused before anything is allocated.
  std::string huge = encode(drawn_one(), 80, 100, false);
  const unsigned char side[4] = {0x00, 0x01, 0x86, 0xa0};  // 100000, big-endian
  huge.replace(16, 4, reinterpret_cast<const char*>(side), 4);
  huge.replace(20, 4, reinterpret_cast<const char*>(side), 4);
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty body"},
      {"hello there", "neither a PNG or JPEG image nor JSON"},
      {"[1, 2, 3]", "expected a JSON array of 784 pixels"},
      {"{\"pixels\": 7}", "expected a JSON array of 784 pixels"},
      {"[1, 2", "not valid JSON"},
      {json(std::vector<int>(784, 300)).dump(), "pixel 0 is 300"},
      {json(std::vector<std::string>(784, "x")).dump(), "pixel 0 is string"},
      {jpeg.substr(0, jpeg.size() / 3), "the image"},
      {huge, "100000"},
      {encode(blank, 64, 64, false), "the image"},
  };
  for (const auto& [body, message] : cases) {
    auto [status, r] = predict(body);
    EXPECT_EQ(status, 400) << message;
    EXPECT_THAT(r.value("error", ""), HasSubstr(message));
  }
}

TEST_F(ServerTest, OversizedBodyIs413WithoutBeingRead) {
  ServerOptions o;
  o.max_body = 1 << 20;
  start(o);
  auto [status, r] = predict(std::string(50 << 20, 'x'));
  EXPECT_EQ(status, 413);
  EXPECT_THAT(r.value("error", ""), HasSubstr("larger than the limit of 1048576 bytes"));
  EXPECT_EQ(client_->Get("/healthz")->status, 200);  // and the server goes on
}

TEST_F(ServerTest, UnknownPathIs404AndWrongMethodIs405) {
  start();
  auto missing = client_->Get("/predictions");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(json::parse(missing->body)["error"].get<std::string>(),
              HasSubstr("no such path: /predictions"));
  auto wrong = client_->Get("/predict");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->get_header_value("Allow"), "POST");
  EXPECT_THAT(json::parse(wrong->body)["error"].get<std::string>(),
              HasSubstr("/predict takes POST, not GET"));
}

TEST_F(ServerTest, MetricsCountRequestsAndPredictionLatency) {
  start();
  std::vector<uint8_t> digit(784, 0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(predict(pixels_json(digit)).first, 200);
  EXPECT_EQ(predict("nonsense").first, 400);
  client_->Get("/nowhere");
  client_->Get("/predict");  // 405, counted once
  auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  const json m = json::parse(res->body);
  EXPECT_EQ(m["requests"]["/predict"], 7);
  EXPECT_EQ(m["requests"]["other"], 1);
  EXPECT_EQ(m["requests"].count("/metrics"), 0u);  // counted once answered
  EXPECT_EQ(m["responses"]["4xx"], 3);
  EXPECT_EQ(m["responses"]["2xx"], 5 + m["requests"]["/healthz"].get<int>());  // start()'s
  EXPECT_EQ(m["predict"]["count"], 5);
  const json& l = m["predict"]["latency_ms"];
  EXPECT_GT(l["p50"].get<double>(), 0);
  EXPECT_LE(l["p50"].get<double>(), l["p99"].get<double>());
  EXPECT_LE(l["p99"].get<double>(), l["max"].get<double>());
}

// A request is counted before its answer is written, so the next request sees it.
TEST_F(ServerTest, MetricsIncludeTheRequestJustAnswered) {
  start();
  const std::string digit = pixels_json(std::vector<uint8_t>(784, 0));
  for (int i = 1; i <= 40; ++i) {
    ASSERT_EQ(predict(digit).first, 200);
    auto res = client_->Get("/metrics");
    ASSERT_TRUE(res);
    const json m = json::parse(res->body);
    ASSERT_EQ(m["requests"]["/predict"], i);
    ASSERT_EQ(m["predict"]["count"], i);
  }
}

TEST_F(ServerTest, ConcurrentClientsAllGetTheSameAnswer) {
  start();
  std::vector<uint8_t> digit(784);
  for (size_t i = 0; i < digit.size(); ++i) digit[i] = static_cast<uint8_t>(i % 200);
  const std::vector<double> want = direct(digit);
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t)
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", port_);
      for (int i = 0; i < 25; ++i) {
        auto res = c.Post("/predict", pixels_json(digit), "application/json");
        if (res && res->status == 200 &&
            json::parse(res->body)["probabilities"].get<std::vector<double>>() == want)
          ++good;
      }
    });
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(good, 150);
}

TEST_F(ServerTest, FullServerAnswers503) {
  ServerOptions o;
  o.threads = 1;
  o.max_queue = 0;
  o.timeout = 2;
  start(o);
  // A connection that sends nothing holds the only worker until its read times out.
  const int idle = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  httplib::Client other("127.0.0.1", port_);
  auto res = other.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_THAT(json::parse(res->body)["error"].get<std::string>(), HasSubstr("server is full"));
  close(idle);
}

TEST(ServerOptionsTest, BadOptionsAndBusyPortsAreNamed) {
  Classifier c(untrained_basic(), "basic");
  ServerOptions bad;
  bad.threads = 0;
  EXPECT_THAT(testing::error_of([&] { Server(c, "m", bad); }),
              HasSubstr("threads must be positive, got 0"));
  ServerOptions any;
  any.port = 0;
  Server first(c, "m", any);
  ServerOptions same;
  same.port = first.bind();
  Server second(c, "m", same);
  EXPECT_THAT(testing::error_of([&] { second.bind(); }),
              HasSubstr(fmt::format("cannot listen on 127.0.0.1:{}", same.port)));
}

TEST(MetricsTest, PercentilesByNearestRank) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  EXPECT_EQ(percentile(v, 0.5), 50);
  EXPECT_EQ(percentile(v, 0.99), 99);
  EXPECT_EQ(percentile(v, 1.0), 100);
  EXPECT_EQ(percentile(v, 0.0), 1);
  EXPECT_EQ(percentile({}, 0.5), 0);
}

}  // namespace
}  // namespace scratchnet::server
