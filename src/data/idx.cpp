#include "scratchnet/data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "scratchnet/check.h"
#include "scratchnet/io/atomic_file.h"

namespace scratchnet {

namespace {

// Largest data we accept: 2^32 bytes, far beyond any IDX data set in use.
constexpr uint64_t kMaxBytes = uint64_t{1} << 32;

// Reads a whole (possibly gzip-compressed) file, stopping once more than `limit` bytes
// have been produced: the caller then reports the size mismatch.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) fail("{}: cannot open: {}", path, errno ? std::strerror(errno) : "out of memory");
    std::error_code ec;
    file_size_ = std::filesystem::file_size(path, ec);
    if (ec) file_size_ = 0;
  }
  ~Reader() { gzclose(file_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Up to n bytes into out; returns how many were read (fewer at the end of the file).
  size_t read(uint8_t* out, size_t n) {
    size_t total = 0;
    while (total < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - total, 1 << 30));
      int got = gzread(file_, out + total, chunk);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(file_, &code);
        fail("{}: cannot read: {}", path_, code == Z_ERRNO ? std::strerror(errno) : msg);
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }

  // The most bytes the file can produce: its size, or what deflate's best ratio (1032:1)
  // expands it to. Valid after the first read.
  uint64_t max_output() const { return gzdirect(file_) ? file_size_ : file_size_ * 1032; }

 private:
  std::string path_;
  gzFile file_;
  uint64_t file_size_ = 0;
};

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  errno = 0;
  Reader reader(path);
  uint8_t magic[4];
  size_t got = reader.read(magic, 4);
  SN_CHECK(got == 4, "{}: not an IDX file: only {} bytes, a header needs at least 4", path, got);
  SN_CHECK(magic[0] == 0 && magic[1] == 0,
           "{}: not an IDX file: magic number {:02x}{:02x}{:02x}{:02x} does not start with 0000",
           path, magic[0], magic[1], magic[2], magic[3]);
  SN_CHECK(magic[2] == 0x08,
           "{}: IDX data type 0x{:02x} is not supported (expected 0x08, unsigned byte)", path,
           magic[2]);
  int ndim = magic[3];
  SN_CHECK(ndim >= 1 && ndim <= 4, "{}: IDX file has {} dimensions, expected 1 to 4", path, ndim);
  uint8_t sizes[16];
  got = reader.read(sizes, 4 * ndim);
  SN_CHECK(got == 4u * ndim, "{}: truncated IDX header: {} dimensions need {} bytes, got {}", path,
           ndim, 4 * ndim, got);
  IdxArray array;
  uint64_t total = 1;
  for (int i = 0; i < ndim; ++i) {
    uint32_t d = big_endian32(sizes + 4 * i);
    array.dims.push_back(d);
    total *= d;  // at most (2^32)^4 overflows only past kMaxBytes checks below
    SN_CHECK(total <= kMaxBytes || d == 0,
             "{}: IDX header claims more than {} bytes of data; the file is not a valid data set",
             path, kMaxBytes);
  }
  // Read in chunks so the buffer grows with the real data, never with the claim; reserve
  // what the file can really hold, so a valid file is read without reallocating.
  array.data.reserve(std::min<uint64_t>(total, reader.max_output()));
  constexpr size_t kChunk = size_t{1} << 20;
  while (array.data.size() < total) {
    size_t want = std::min<uint64_t>(kChunk, total - array.data.size());
    size_t old = array.data.size();
    array.data.resize(old + want);
    size_t n = reader.read(array.data.data() + old, want);
    if (n < want) {
      fail("{}: truncated: the header promises {} data bytes, the file has {}", path, total,
           old + n);
    }
  }
  uint8_t extra;
  SN_CHECK(reader.read(&extra, 1) == 0,
           "{}: file is longer than its header says ({} data bytes): trailing data", path, total);
  return array;
}

void write_idx(const std::string& path, const IdxArray& array) {
  SN_CHECK(!array.dims.empty() && array.dims.size() <= 4, "{}: IDX needs 1 to 4 dimensions, got {}",
           path, array.dims.size());
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(array.dims.size())};
  uint64_t total = 1;
  for (int64_t d : array.dims) {
    SN_CHECK(d >= 0 && d <= UINT32_MAX, "{}: IDX dimension {} is out of range", path, d);
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(d >> shift));
    total *= static_cast<uint64_t>(d);
  }
  SN_CHECK(total == array.data.size(), "{}: IDX dimensions need {} bytes, data has {}", path, total,
           array.data.size());
  bytes.insert(bytes.end(), array.data.begin(), array.data.end());
  write_file_atomic(path, [&](std::FILE* f) { std::fwrite(bytes.data(), 1, bytes.size(), f); });
}

}  // namespace scratchnet
