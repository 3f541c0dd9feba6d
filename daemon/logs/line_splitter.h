#pragma once
// LineSplitter: cuts a child's stdout or stderr byte stream into lines.
//
// One splitter per pipe, owned by whoever reads the pipe (the supervisor);
// loop thread only (no locking). The splitter holds at most max_line + 1
// bytes between calls, however the child writes, so a child that never
// prints '\n' cannot grow the daemon.
//
// Contract:
//  - '\n' ends a line and is stripped, and so is a '\r' just before it.
//  - A line longer than max_line is emitted in pieces of max_line bytes,
//    partial=true on every piece but the last; a piece ends up to 3 bytes
//    early rather than cut a UTF-8 character in two. A line of exactly max_line bytes is one
//    piece. The pieces and their boundaries do not depend on how the bytes
//    were chunked by read(2).
//  - Flush() (call at EOF) emits what is buffered as a final line with
//    partial=false (a trailing '\r' stripped); it emits nothing if nothing is
//    buffered. After a partial piece something is always buffered, so a
//    partial piece is always followed by its continuation.
//  - Bytes are passed through as they are (no UTF-8 check); the log store
//    sanitizes what it stores.
//  - The string_view given to Emit is valid only during the call.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace relsupd {

class LineSplitter {
 public:
  // REQUIRES: max_line > 0.
  explicit LineSplitter(size_t max_line = 16 * 1024);
  using Emit = std::function<void(std::string_view line, bool partial)>;
  void Feed(std::string_view data, const Emit& emit);
  void Flush(const Emit& emit);
  // Bytes held for an unfinished line (at most max_line + 1).
  size_t buffered() const;
  size_t max_line() const { return max_line_; }
  // The bytes held for the unfinished line, and back (a daemon-reexec
  // carries them): Restore(bytes) then Feed(rest) emits what one Feed of
  // bytes + rest would have. Restore refuses (false, nothing changed) bytes
  // no splitter could hold: a '\n', or more than max_line bytes not
  // counting one trailing '\r'.
  std::string_view buffered_bytes() const { return buf_; }
  [[nodiscard]] bool Restore(std::string_view bytes);

 private:
  // Emits one complete line (without its '\n'), in pieces if it is long.
  void EmitLine(std::string_view line, const Emit& emit) const;
  // Emits max_line pieces from buf_ while more than max_line bytes (not
  // counting a trailing '\r') are held.
  void CutBuffer(const Emit& emit);

  size_t max_line_;
  std::string buf_;
};

}  // namespace relsupd
