#pragma once
// What the parser fuzz targets share: the input as text, and the rule that
// a refused input must come with a message (every bad input gets a clear
// error naming what was wrong). Header only; libFuzzer's thread.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/base/status.h"

namespace relsupd::fuzz {

// The fuzz input, byte for byte, as text.
inline std::string InputText(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Whether `r` refused its input; aborts (a finding) when the refusal has no
// message.
template <typename T>
bool Refused(const Result<T>& r) {
  if (r.ok()) return false;
  if (r.status().message().empty()) std::abort();
  return true;
}

}  // namespace relsupd::fuzz
