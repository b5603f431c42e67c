// report_html.h — the pieces of HTML the training report is made of (private to src/): escaped
// text, embedded images and the page's style sheet.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace scratchnet {

// Text made safe for element content and quoted attributes: & < > " ' as character references.
std::string html_escape(std::string_view text);

// A gray image (height, width), 0 black and 255 white, as a "data:image/png;base64,..." URI.
std::string png_data_uri(const uint8_t* pixels, int64_t height, int64_t width);

// The page's CSS (without the <style> tags).
std::string_view report_css();

}  // namespace scratchnet
