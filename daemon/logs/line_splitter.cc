#include "daemon/logs/line_splitter.h"

#include <cassert>
#include <cstring>

namespace relsupd {

LineSplitter::LineSplitter(size_t max_line) : max_line_(max_line) {
  assert(max_line_ > 0);
}

size_t LineSplitter::buffered() const { return buf_.size(); }

bool LineSplitter::Restore(std::string_view bytes) {
  size_t usable = bytes.size();
  if (usable > 0 && bytes.back() == '\r') --usable;
  if (usable > max_line_ || bytes.find('\n') != std::string_view::npos)
    return false;
  buf_.assign(bytes);
  return true;
}

void LineSplitter::EmitLine(std::string_view line, const Emit& emit) const {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  while (line.size() > max_line_) {
    emit(line.substr(0, max_line_), true);
    line.remove_prefix(max_line_);
  }
  emit(line, false);
}

void LineSplitter::CutBuffer(const Emit& emit) {
  // A trailing '\r' is held back: if '\n' follows, it is not part of the
  // line, and cutting before it would leave an empty last piece.
  size_t usable = buf_.size();
  if (usable > 0 && buf_.back() == '\r') --usable;
  size_t off = 0;
  std::string_view view(buf_);
  while (usable - off > max_line_) {
    emit(view.substr(off, max_line_), true);
    off += max_line_;
  }
  // One erase for all pieces keeps a large unterminated chunk linear.
  if (off > 0) buf_.erase(0, off);
}

void LineSplitter::Feed(std::string_view data, const Emit& emit) {
  while (!data.empty()) {
    const void* hit = std::memchr(data.data(), '\n', data.size());
    if (hit == nullptr) {
      buf_.append(data);
      CutBuffer(emit);
      return;
    }
    size_t len = static_cast<size_t>(static_cast<const char*>(hit) - data.data());
    if (buf_.empty()) {
      // Fast path: the whole line is in `data`; no copy.
      EmitLine(data.substr(0, len), emit);
    } else {
      buf_.append(data.substr(0, len));
      EmitLine(buf_, emit);
      buf_.clear();
    }
    data.remove_prefix(len + 1);
  }
}

void LineSplitter::Flush(const Emit& emit) {
  if (buf_.empty()) return;
  EmitLine(buf_, emit);
  buf_.clear();
}

}  // namespace relsupd
