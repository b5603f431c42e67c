#include "report_html.h"

#include <algorithm>
#include <vector>

#include "scratchnet/data/image.h"

namespace scratchnet {

namespace {

std::string base64(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = static_cast<uint32_t>(bytes[i]) << 16;
    if (n > 1) v |= static_cast<uint32_t>(bytes[i + 1]) << 8;
    if (n > 2) v |= bytes[i + 2];
    for (size_t j = 0; j < 4; ++j) out += j <= n ? kDigits[(v >> (18 - 6 * j)) & 63] : '=';
  }
  return out;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const char* ref = c == '&'    ? "&amp;"
                      : c == '<'  ? "&lt;"
                      : c == '>'  ? "&gt;"
                      : c == '"'  ? "&quot;"
                      : c == '\'' ? "&#39;"
                                  : nullptr;
    if (ref != nullptr)
      out += ref;
    else
      out += c;
  }
  return out;
}

std::string png_data_uri(const uint8_t* pixels, int64_t height, int64_t width) {
  return "data:image/png;base64," + base64(encode_png(pixels, height, width, 1));
}

std::string_view report_css() {
  return R"(
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6474; --line: #dde1e8; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f8; color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 40px; }
header h1 { font-size: 26px; margin: 0 0 4px; }
header .headline { font-size: 17px; margin: 0 0 6px; }
header .headline strong { font-size: 20px; }
.muted, header p { color: var(--muted); margin: 2px 0; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 16px 20px 18px; margin: 16px 0; }
section h2 { font-size: 17px; margin: 0 0 10px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 12px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: inherit; fill: var(--ink); }
svg .axis { stroke: #8a93a3; stroke-width: 1; }
svg .grid { stroke: #eceef2; stroke-width: 1; }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .title { font-size: 13px; font-weight: 600; }
svg .label { font-size: 11px; fill: var(--muted); }
svg .legend { font-size: 11px; }
svg .count { font-size: 11px; }
.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.mistakes { display: grid; grid-template-columns: repeat(auto-fill, minmax(104px, 1fr)); gap: 10px;
            flex: 1; }
figure { margin: 0; text-align: center; }
figure img { width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid var(--line);
             border-radius: 4px; }
figcaption { font-size: 12px; line-height: 1.3; }
figcaption .wrong { color: #b2182b; font-weight: 600; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid var(--line); }
th { font-weight: 600; color: var(--muted); }
td:first-child, th:first-child { text-align: left; }
tfoot td { font-weight: 600; border-bottom: none; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 14px; }
dt { color: var(--muted); }
dd { margin: 0; }
pre { background: #f7f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px;
      overflow-x: auto; font-size: 12px; }
.empty { color: var(--muted); font-style: italic; }
)";
}

}  // namespace scratchnet
