// server.cpp — scratchnet serve over cpp-httplib (server.h).
#include "server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "metrics.h"
#include "page_html.h"  // kPageHtml: page.html, embedded at build time

namespace scratchnet::server {

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// Set on the accepting thread while it answers a connection the queue had no room for.
thread_local bool t_rejected = false;
// Seconds the current request's prediction took (< 0: none), for the metrics and the log.
thread_local double t_predict_seconds = -1;

// Worker threads for connections with a bounded queue. A connection past the queue is
// served at once on the accepting thread with t_rejected set, and gets a 503 and
// "Connection: close" before its body is read.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, int max_queue) : max_queue_(static_cast<size_t>(max_queue)) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (jobs_.size() < max_queue_) {
        jobs_.push_back(std::move(fn));
        cond_.notify_one();
        return;
      }
    }
    t_rejected = true;
    fn();
    t_rejected = false;
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
    }
    cond_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cond_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }

  size_t max_queue_;
  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
  std::mutex mutex_;
  std::condition_variable cond_;
};

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}});
}

// What the routes are, for 404/405 and for the metrics (unknown paths count as "other").
struct Route {
  const char* path;
  const char* method;
};
constexpr Route kRoutes[] = {
    {"/", "GET"}, {"/predict", "POST"}, {"/healthz", "GET"}, {"/metrics", "GET"}};

std::string route_of(const std::string& path) {
  for (const Route& r : kRoutes)
    if (path == r.path) return r.path;
  return "other";
}

std::string routes_list() {
  std::vector<std::string> parts;
  for (const Route& r : kRoutes) parts.push_back(fmt::format("{} {}", r.method, r.path));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::vector<uint8_t> digit_from_json(const std::string& body, int64_t side) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    throw HttpError(400, fmt::format("body is not valid JSON ({})", e.what()));
  }
  if (j.is_object() && j.contains("pixels")) j = j["pixels"];
  const size_t n = static_cast<size_t>(side * side);
  if (!j.is_array() || j.size() != n)
    throw HttpError(400, fmt::format("expected a JSON array of {} pixels ({}x{}, row by row) or "
                                     "{{\"pixels\": [...]}}, got {}",
                                     n, side, side,
                                     j.is_array() ? fmt::format("{} values", j.size())
                                                  : std::string(j.type_name())));
  std::vector<uint8_t> digit(n);
  for (size_t i = 0; i < n; ++i) {
    if (!j[i].is_number())
      throw HttpError(
          400, fmt::format("pixel {} is {}, expected a number in [0, 255]", i, j[i].type_name()));
    const double v = j[i].get<double>();
    if (!(v >= 0 && v <= 255))
      throw HttpError(400, fmt::format("pixel {} is {}, expected a number in [0, 255]", i, v));
    digit[i] = static_cast<uint8_t>(v + 0.5);
  }
  return digit;
}

}  // namespace

std::vector<uint8_t> digit_from_body(const std::string& body, const MnistStyle& style,
                                     const ImageLimits& limits) {
  if (body.empty())
    throw HttpError(400, "empty body: expected a PNG or JPEG image or a JSON array of pixels");
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  if (!image_format(bytes).empty()) {
    std::vector<uint8_t> digit;
    try {
      to_mnist_style(digit, decode_image(bytes, "the image", limits), style);
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
    return digit;
  }
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (body[first] == '[' || body[first] == '{'))
    return digit_from_json(body, style.size);
  throw HttpError(400,
                  "body is neither a PNG or JPEG image nor JSON: expected an image or a "
                  "JSON array of pixels");
}

struct Server::Impl {
  Classifier& classifier;
  std::string model_name;
  ServerOptions opts;
  httplib::Server http;
  Metrics metrics;
  std::timed_mutex model_mutex;  // one prediction at a time
  int port = -1;

  Impl(Classifier& c, std::string name, ServerOptions o)
      : classifier(c), model_name(std::move(name)), opts(std::move(o)) {}

  json health() const {
    std::vector<std::string> names;
    for (int64_t c = 0; c < classifier.classes(); ++c) names.push_back(classifier.class_name(c));
    return {{"status", "ok"},
            {"model", model_name},
            {"classes", classifier.classes()},
            {"class_names", names},
            {"input", {1, classifier.side(), classifier.side()}}};
  }

  void predict(const httplib::Request& req, httplib::Response& res) {
    const Clock::time_point start = Clock::now();
    const std::vector<uint8_t> digit =
        digit_from_body(req.body, classifier.style(), opts.image_limits);
    std::unique_lock<std::timed_mutex> lock(model_mutex, std::defer_lock);
    if (!lock.try_lock_for(std::chrono::duration<double>(opts.timeout)))
      throw HttpError(503, fmt::format("the model stayed busy for {} s; try again", opts.timeout));
    std::vector<double> p;  // (1, K)
    classifier.probabilities(p, digit);
    lock.unlock();

    const int64_t k = classifier.classes();
    json top = json::array();
    for (int64_t c : top_classes(p.data(), k, 3))
      top.push_back({{"class", classifier.class_name(c)}, {"label", c}, {"probability", p[c]}});
    const int64_t best = top[0]["label"].get<int64_t>();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    json out = {{"class", classifier.class_name(best)},
                {"label", best},
                {"probabilities", p},
                {"top", top},
                {"latency_ms", 1e3 * seconds}};
    if (req.get_param_value("digit") == "1") out["digit"] = digit;
    t_predict_seconds = seconds;
    send_json(res, 200, out);
  }

  // Counts an answered request in the metrics. Called before the answer is written (not in
  // the logger, which runs after), so a client that has its answer and asks /metrics next
  // finds it counted. A status httplib has yet to fill in (-1) is its default, 200.
  void count(const httplib::Request& req, const httplib::Response& res) {
    metrics.record(route_of(req.path), res.status < 0 ? 200 : res.status, t_predict_seconds);
  }

  // A route's handler that counts its request when it has answered.
  httplib::Server::Handler counted(httplib::Server::Handler handler) {
    return
        [this, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
          handler(req, res);
          count(req, res);
        };
  }

  // Runs a route's handler; whatever it throws becomes a JSON error, never a crash.
  httplib::Server::Handler guarded(void (Impl::*handler)(const httplib::Request&,
                                                         httplib::Response&)) {
    return counted([this, handler](const httplib::Request& req, httplib::Response& res) {
      metrics.add_in_flight(1);
      try {
        (this->*handler)(req, res);
      } catch (const HttpError& e) {
        send_error(res, e.status(), e.what());
      } catch (const Error& e) {
        send_error(res, 400, e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, fmt::format("internal error: {}", e.what()));
      }
      metrics.add_in_flight(-1);
    });
  }

  void setup() {
    http.new_task_queue = [this] { return new BoundedPool(opts.threads, opts.max_queue); };
    // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would let a second
    // server share a port in use instead of failing to bind.
    http.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // Answers are small: without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK
    // hold each one back for about 40 ms.
    http.set_tcp_nodelay(true);
    http.set_payload_max_length(static_cast<size_t>(opts.max_body));
    const auto timeout = std::chrono::duration<double>(opts.timeout);
    http.set_read_timeout(timeout);
    http.set_write_timeout(timeout);
    http.set_keep_alive_timeout(static_cast<time_t>(std::max(1.0, opts.timeout)));

    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (t_rejected) {
        res.set_header("Connection", "close");
        res.set_header("Retry-After", "1");
        send_error(res, 503,
                   fmt::format("the server is full ({} connections served, {} waiting); try again",
                               opts.threads, opts.max_queue));
        count(req, res);
        return httplib::Server::HandlerResponse::Handled;
      }
      for (const Route& r : kRoutes) {
        if (req.path != r.path || req.method == r.method ||
            (req.method == "HEAD" && std::string(r.method) == "GET"))
          continue;
        res.set_header("Allow", r.method);
        send_error(res, 405, fmt::format("{} takes {}, not {}", r.path, r.method, req.method));
        count(req, res);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.Get("/", counted([](const httplib::Request&, httplib::Response& res) {
               res.set_content(kPageHtml, "text/html; charset=utf-8");
             }));
    http.Get("/healthz", counted([this](const httplib::Request&, httplib::Response& res) {
               send_json(res, 200, health());
             }));
    http.Get("/metrics", counted([this](const httplib::Request&, httplib::Response& res) {
               send_json(res, 200, metrics.to_json());  // this request not yet counted
             }));
    http.Post("/predict", guarded(&Impl::predict));

    // Errors httplib answers itself (an unknown path, a body over the limit, a bad request
    // line) get a JSON body too, and are counted here. It runs for every answer >= 400; those
    // with a body are ours, already counted.
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          std::string message;
          if (res.status == 404)
            message = fmt::format("no such path: {} (there are {})", req.path, routes_list());
          else if (res.status == 413)
            message = fmt::format("body larger than the limit of {} bytes", opts.max_body);
          else
            message = fmt::format("HTTP {}", res.status);
          send_error(res, res.status, message);
          count(req, res);
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler(
        [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
          send_error(res, 500, "internal error");
          count(req, res);
        });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      if (opts.log)
        fmt::print(
            stderr, "{} {} {} -> {}{}\n", req.remote_addr, req.method, req.path, res.status,
            t_predict_seconds >= 0 ? fmt::format(" ({:.2f} ms)", 1e3 * t_predict_seconds) : "");
      t_predict_seconds = -1;
    });
  }
};

Server::Server(Classifier& classifier, std::string model_name, ServerOptions options)
    : impl_(std::make_unique<Impl>(classifier, std::move(model_name), std::move(options))) {
  const ServerOptions& o = impl_->opts;
  SN_CHECK(o.port >= 0 && o.port <= 65535, "port must be in [0, 65535], got {}", o.port);
  SN_CHECK(o.threads > 0, "threads must be positive, got {}", o.threads);
  SN_CHECK(o.max_queue >= 0, "max_queue must be >= 0, got {}", o.max_queue);
  SN_CHECK(o.max_body > 0, "max_body must be positive, got {}", o.max_body);
  SN_CHECK(o.timeout > 0, "timeout must be positive, got {}", o.timeout);
  impl_->setup();
}

Server::~Server() = default;

int Server::bind() {
  Impl& s = *impl_;
  const bool ok = s.opts.port == 0 ? (s.port = s.http.bind_to_any_port(s.opts.host)) > 0
                                   : s.http.bind_to_port(s.opts.host, s.opts.port);
  SN_CHECK(ok, "cannot listen on {}:{} (in use, not an address of this machine, or not allowed)",
           s.opts.host, s.opts.port);
  if (s.opts.port != 0) s.port = s.opts.port;
  return s.port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() { impl_->http.stop(); }

int Server::port() const { return impl_->port; }

}  // namespace scratchnet::server
