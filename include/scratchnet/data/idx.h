// idx.h — read IDX files, the format of MNIST, Fashion-MNIST, EMNIST and KMNIST.
//
// An IDX file is a big-endian header: two zero bytes, a type byte (0x08 = unsigned byte, the
// only type these sets use), the number of dimensions D, then D 32-bit sizes; then the data,
// row-major. Files may be raw or gzip-compressed (detected from the content, not the name).
// Nothing in a header is trusted: a raw file's size must match its header exactly, and a
// gzip stream is decompressed incrementally, so a header claiming 2^31 images fails for its
// size instead of allocating. Errors are one line naming the file and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace scratchnet {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. (60000, 28, 28) or (60000)
  std::vector<uint8_t> data;  // product of dims bytes
};

IdxArray read_idx(const std::string& path);

// Writes a raw (uncompressed) unsigned-byte IDX file: for tests and tools.
void write_idx(const std::string& path, const IdxArray& array);

}  // namespace scratchnet
