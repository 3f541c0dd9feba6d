#pragma once
// ContentLines: walks the lines of a line-based file (an env file, a
// Procfile) that carry something. Lines end in LF or CRLF; blank lines and
// lines whose first non-blank character is '#' are skipped. It only views
// the text, which must outlive it. Pure; any thread.

#include <cstddef>
#include <string_view>

namespace relsupd {

struct ContentLine {
  size_t number = 0;      // 1-based, counting every line
  std::string_view text;  // without the line end
  size_t indent = 0;      // offset of the first character not ' ' or '\t'
};

class ContentLines {
 public:
  explicit ContentLines(std::string_view text) : text_(text) {}

  // Moves to the next line with content; false at the end of the text.
  bool Next(ContentLine* line) {
    while (pos_ < text_.size()) {
      size_t nl = text_.find('\n', pos_);
      if (nl == std::string_view::npos) nl = text_.size();
      std::string_view text = text_.substr(pos_, nl - pos_);
      pos_ = nl + 1;
      ++number_;
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      size_t first = text.find_first_not_of(" \t");
      if (first == std::string_view::npos || text[first] == '#') continue;
      *line = {number_, text, first};
      return true;
    }
    return false;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t number_ = 0;
};

}  // namespace relsupd
