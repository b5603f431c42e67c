#include "scratchnet/io/safetensors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/io/atomic_file.h"

namespace scratchnet {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swapping");

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit the Python package enforces
constexpr size_t kLengthBytes = 8;
constexpr const char* kMetadataKey = "__metadata__";

enum class DType { F32, F64, I64, I32, I8, U8 };

struct DTypeInfo {
  const char* name;
  DType dtype;
  uint64_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {"F32", DType::F32, 4}, {"F64", DType::F64, 8}, {"I64", DType::I64, 8},
    {"I32", DType::I32, 4}, {"I8", DType::I8, 1},   {"U8", DType::U8, 1},
};

// A header value cut to a readable length for an error message.
std::string brief(const json& value) {
  constexpr size_t kMax = 80;
  std::string s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

// A tensor name quoted and escaped as in JSON (so the message stays on one line).
std::string quoted(const std::string& name) { return brief(json(name)); }

// One tensor entry after every check on the header, before any data is touched.
struct Entry {
  std::string name;
  DTypeInfo dtype;
  Shape shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data region
  uint64_t end = 0;
};

std::string read_whole_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0) {
    int err = errno;
    std::fclose(f);
    fail("{}: cannot read: {}", path, std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    std::fclose(f);
    fail("{}: cannot read: {}", path, std::strerror(EISDIR));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = bytes.empty() ? 0 : std::fread(bytes.data(), 1, bytes.size(), f);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) fail("{}: cannot read: {}", path, std::strerror(err));
  if (got != bytes.size())
    fail("{}: cannot read: got {} of {} bytes (was the file truncated while reading?)", path, got,
         bytes.size());
  return bytes;
}

const DTypeInfo& parse_dtype(const std::string& path, const std::string& name, const json& entry) {
  auto it = entry.find("dtype");
  if (it == entry.end()) fail("{}: tensor {}: missing \"dtype\"", path, quoted(name));
  if (!it->is_string())
    fail("{}: tensor {}: \"dtype\" must be a string, got {}", path, quoted(name), brief(*it));
  const std::string& dtype = it->get_ref<const std::string&>();
  for (const DTypeInfo& info : kDTypes)
    if (dtype == info.name) return info;
  fail("{}: tensor {}: dtype {} is not supported (expected F32, F64, I64, I32, I8 or U8)", path,
       quoted(name), quoted(dtype));
}

Shape parse_shape(const std::string& path, const std::string& name, const json& entry) {
  auto it = entry.find("shape");
  if (it == entry.end()) fail("{}: tensor {}: missing \"shape\"", path, quoted(name));
  if (!it->is_array())
    fail("{}: tensor {}: \"shape\" must be an array of non-negative integers, got {}", path,
         quoted(name), brief(*it));
  Shape shape;
  shape.reserve(it->size());
  for (const json& d : *it) {
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
      fail("{}: tensor {}: \"shape\" {} has a negative dimension", path, quoted(name), brief(*it));
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t{INT64_MAX})
      fail("{}: tensor {}: \"shape\" must be an array of non-negative integers, got {}", path,
           quoted(name), brief(*it));
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

void parse_offsets(const std::string& path, const std::string& name, const json& entry,
                   uint64_t data_size, Entry& out) {
  auto it = entry.find("data_offsets");
  if (it == entry.end()) fail("{}: tensor {}: missing \"data_offsets\"", path, quoted(name));
  bool ok = it->is_array() && it->size() == 2 && (*it)[0].is_number_unsigned() &&
            (*it)[1].is_number_unsigned();
  if (!ok)
    fail("{}: tensor {}: \"data_offsets\" must be [begin, end] with non-negative integers, got {}",
         path, quoted(name), brief(*it));
  out.begin = (*it)[0].get<uint64_t>();
  out.end = (*it)[1].get<uint64_t>();
  if (out.begin > out.end || out.end > data_size)
    fail(
        "{}: tensor {}: data_offsets [{}, {}] are out of range for the {}-byte data region "
        "(need begin <= end <= {})",
        path, quoted(name), out.begin, out.end, data_size, data_size);
}

// Checks that the byte range holds exactly numel(shape) elements of the dtype. The size is
// computed without overflow and must stay below 2^63 bytes even ignoring zero dimensions (so
// shape_numel never overflows), and a shape claiming 2^40 elements is rejected here, before
// any allocation, because its size cannot match offsets that lie inside the file.
void check_size(const std::string& path, const Entry& e) {
  uint64_t bytes = e.dtype.size;
  bool has_zero = false;
  for (int64_t d : e.shape) {
    if (d == 0) {
      has_zero = true;
      continue;
    }
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes) ||
        bytes > uint64_t{INT64_MAX})
      fail("{}: tensor {}: shape {} of {} is too large (2^63 bytes or more)", path, quoted(e.name),
           shape_str(e.shape), e.dtype.name);
  }
  if (has_zero) bytes = 0;
  if (bytes != e.end - e.begin)
    fail("{}: tensor {}: data_offsets [{}, {}] do not match shape {} of {} ({} bytes)", path,
         quoted(e.name), e.begin, e.end, shape_str(e.shape), e.dtype.name, bytes);
}

void parse_metadata(const std::string& path, const json& value, SafeTensors& out) {
  if (!value.is_object())
    fail("{}: \"__metadata__\" must be an object of strings, got {}", path, brief(value));
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string())
      fail("{}: \"__metadata__\" must be an object of strings, but {} is {}", path, quoted(key),
           brief(v));
    out.metadata[key] = v.get<std::string>();
  }
}

// Buffers of different tensors may leave gaps but must not share a byte.
void check_no_overlap(const std::string& path, std::vector<const Entry*> entries) {
  std::erase_if(entries, [](const Entry* e) { return e->begin == e->end; });
  std::sort(entries.begin(), entries.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry& a = *entries[i - 1];
    const Entry& b = *entries[i];
    if (a.end > b.begin)
      fail("{}: tensors {} [{}, {}] and {} [{}, {}] overlap", path, quoted(a.name), a.begin, a.end,
           quoted(b.name), b.begin, b.end);
  }
}

template <typename Src>
void convert(float* dst, const char* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    Src v;
    std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(Src)), sizeof(Src));
    dst[i] = static_cast<float>(v);
  }
}

Tensor load_tensor(const Entry& e, const char* data) {
  Tensor t;
  t.resize(e.shape);
  const char* src = data + e.begin;
  int64_t n = t.numel();
  if (n == 0) return t;
  switch (e.dtype.dtype) {
    case DType::F32:
      std::memcpy(t.data(), src, static_cast<size_t>(n) * sizeof(float));
      break;
    case DType::F64:
      convert<double>(t.data(), src, n);
      break;
    case DType::I64:
      convert<int64_t>(t.data(), src, n);
      break;
    case DType::I32:
      convert<int32_t>(t.data(), src, n);
      break;
    case DType::I8:
      convert<int8_t>(t.data(), src, n);
      break;
    case DType::U8:
      convert<uint8_t>(t.data(), src, n);
      break;
  }
  return t;
}

}  // namespace

SafeTensors read_safetensors(const std::string& path) {
  const std::string bytes = read_whole_file(path);
  const uint64_t file_size = bytes.size();
  if (file_size < kLengthBytes)
    fail("{}: file is too short for a safetensors header ({} bytes, need at least {})", path,
         file_size, kLengthBytes);

  uint64_t header_size = 0;
  for (size_t i = 0; i < kLengthBytes; ++i)
    header_size |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  if (header_size > kMaxHeaderBytes)
    fail("{}: header length {} exceeds the {}-byte limit", path, header_size, kMaxHeaderBytes);
  if (header_size > file_size - kLengthBytes)
    fail("{}: header length {} exceeds the {} bytes that follow it", path, header_size,
         file_size - kLengthBytes);
  const uint64_t data_start = kLengthBytes + header_size;
  const uint64_t data_size = file_size - data_start;

  json header;
  try {
    header = json::parse(bytes.begin() + kLengthBytes, bytes.begin() + data_start);
  } catch (const json::parse_error& e) {
    // Drop the "[json.exception.parse_error.101] " prefix; the rest says where and why.
    std::string why = e.what();
    size_t cut = why.find("] ");
    if (cut != std::string::npos) why = why.substr(cut + 2);
    fail("{}: header is not valid JSON: {}", path, why);
  }
  if (!header.is_object()) fail("{}: header must be a JSON object, got {}", path, brief(header));

  SafeTensors out;
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      parse_metadata(path, value, out);
      continue;
    }
    if (!value.is_object())
      fail("{}: tensor {}: entry must be an object, got {}", path, quoted(name), brief(value));
    Entry e{.name = name,
            .dtype = parse_dtype(path, name, value),
            .shape = parse_shape(path, name, value)};
    parse_offsets(path, name, value, data_size, e);
    check_size(path, e);
    entries.push_back(std::move(e));
  }
  std::vector<const Entry*> pointers;
  for (const Entry& e : entries) pointers.push_back(&e);
  check_no_overlap(path, std::move(pointers));

  const char* data = bytes.data() + data_start;
  for (const Entry& e : entries) {
    out.tensors.emplace(e.name, load_tensor(e, data));
    if (e.dtype.dtype == DType::I8) out.int8.insert(e.name);
  }
  return out;
}

void write_safetensors(const std::string& path, const SafeTensors& file) {
  // ordered_json keeps insertion order, so the header reads exactly as the one
  // tools/goldens_common.py writes: tensors by name, then "__metadata__".
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::vector<std::pair<const Tensor*, bool>> data;  // each tensor, and whether it is I8
  uint64_t offset = 0;
  for (const auto& name : file.int8)
    SN_CHECK(file.tensors.count(name), "{}: int8 tensor {} is not among the tensors", path,
             quoted(name));
  for (const auto& [name, tensor] : file.tensors) {  // std::map: names sorted
    SN_CHECK(name != kMetadataKey, "{}: tensor name \"{}\" is reserved for metadata", path,
             kMetadataKey);
    const bool int8 = file.int8.count(name) > 0;
    if (int8)
      for (float v : tensor)
        SN_CHECK(v == std::nearbyint(v) && v >= -128 && v <= 127,
                 "{}: tensor {} is stored as I8 but holds {}", path, quoted(name), v);
    uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * (int8 ? 1 : sizeof(float));
    header[name] = {{"dtype", int8 ? "I8" : "F32"},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    data.push_back({&tensor, int8});
    offset += bytes;
  }
  if (!file.metadata.empty()) header[kMetadataKey] = file.metadata;

  std::string text;
  try {
    text = header.dump(-1, ' ', /*ensure_ascii=*/true);
  } catch (const nlohmann::ordered_json::type_error&) {
    fail("{}: tensor names and metadata must be valid UTF-8", path);
  }
  text.append((kLengthBytes - text.size() % kLengthBytes) % kLengthBytes, ' ');

  write_file_atomic(path, [&](std::FILE* f) {
    unsigned char length[kLengthBytes];
    for (size_t i = 0; i < kLengthBytes; ++i)
      length[i] = static_cast<unsigned char>(static_cast<uint64_t>(text.size()) >> (8 * i));
    std::fwrite(length, 1, kLengthBytes, f);
    std::fwrite(text.data(), 1, text.size(), f);
    for (const auto& [t, int8] : data) {
      if (t->empty()) continue;
      if (!int8) {
        std::fwrite(t->data(), sizeof(float), t->numel(), f);
        continue;
      }
      std::vector<int8_t> bytes(t->begin(), t->end());
      std::fwrite(bytes.data(), 1, bytes.size(), f);
    }
  });
}

}  // namespace scratchnet
