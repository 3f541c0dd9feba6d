#include "daemon/logs/line_splitter.h"

#include <cassert>
#include <cstring>

namespace relsupd {

LineSplitter::LineSplitter(size_t max_line) : max_line_(max_line) {
  assert(max_line_ > 0);
}

namespace {

// Where the first piece of `line` (longer than `max`) ends: at `max`, or
// up to 3 bytes before it when a UTF-8 sequence would be cut there, so
// that each piece of valid UTF-8 is valid UTF-8 (and keeps its
// characters). Bytes that are not UTF-8 are cut at `max`.
size_t PieceEnd(std::string_view line, size_t max) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(line[i]); };
  size_t k = max;
  while (k > 0 && max - k < 3 && (byte(k) & 0xC0) == 0x80) --k;
  if (k == max || k == 0) return max;
  const unsigned char lead = byte(k);
  const size_t len = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return lead >= 0xC0 && lead < 0xF8 && k + len > max ? k : max;
}

}  // namespace

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
    const size_t end = PieceEnd(line, max_line_);
    emit(line.substr(0, end), true);
    line.remove_prefix(end);
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
    const size_t end = PieceEnd(view.substr(off), max_line_);
    emit(view.substr(off, end), true);
    off += end;
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
