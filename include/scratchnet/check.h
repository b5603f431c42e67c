// check.h — errors and argument checks.
//
// Every failure a user can cause (a bad option, a wrong shape, a broken file) throws
// scratchnet::Error with a one-line message that says what was wrong and what was expected.
// SN_CHECK(cond, "fmt {}", args...) formats with fmt and throws when cond is false.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace scratchnet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace scratchnet

#define SN_CHECK(cond, ...)                     \
  do {                                          \
    if (!(cond)) scratchnet::fail(__VA_ARGS__); \
  } while (0)
