#include "scratchnet/io/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "scratchnet/check.h"

namespace scratchnet {

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) fail("{}: cannot write: {}", path, std::strerror(errno));
  try {
    write(f);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  int err = std::ferror(f) ? (errno ? errno : EIO) : 0;
  if (std::fflush(f) != 0 && err == 0) err = errno;
  if (err == 0 && ::fsync(::fileno(f)) != 0) err = errno;  // on disk before it takes the name
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    std::remove(tmp.c_str());
    fail("{}: cannot write: {}", path, std::strerror(err));
  }
}

void write_text_atomic(const std::string& path, std::string_view text) {
  write_file_atomic(path, [&](std::FILE* f) {
    if (!text.empty()) std::fwrite(text.data(), 1, text.size(), f);
  });
}

}  // namespace scratchnet
