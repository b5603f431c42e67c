// error.h — the text of the scratchnet::Error a call throws, for asserting messages.
#pragma once

#include <functional>
#include <string>

#include "scratchnet/check.h"

namespace scratchnet::testing {

// Runs fn and returns the message of the scratchnet::Error it throws, or "(no error)".
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace scratchnet::testing
