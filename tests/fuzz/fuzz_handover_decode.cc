// Fuzzes the daemon-reexec handover as the new image reads it from its
// memfd (daemon/reexec/memfd.h, handover_codec.h).
//
// Byte 0 picks what the rest is: even, the whole memfd (header, hashes,
// payload); odd, a CBOR payload that gets a valid frame around it, so the
// fuzzer reaches the decoder past the SHA-256 checks.
//
// Properties: a refusal has a message; a record that decodes holds no
// partial line over the limit, and encodes and decodes again to the same
// bytes.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/reexec/handover_codec.h"
#include "daemon/reexec/memfd.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using relsupd::HandoverRecord;

void CheckDecoded(const HandoverRecord& r) {
  for (const auto& app : r.supervisor.apps) {
    if (!app.active) continue;
    for (const auto& i : app.active->instances)
      if (i.capture.out_partial.size() > relsupd::kMaxPartialLineBytes ||
          i.capture.err_partial.size() > relsupd::kMaxPartialLineBytes)
        std::abort();
  }
  auto once = relsupd::EncodeHandover(r);
  if (!once.ok()) std::abort();  // it decoded, so it is within the cap
  auto back = relsupd::DecodeHandover(*once, relsupd::kHandoverVersion);
  if (relsupd::fuzz::Refused(back)) std::abort();
  auto twice = relsupd::EncodeHandover(*back);
  if (!twice.ok() || *twice != *once) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string rest = relsupd::fuzz::InputText(data + 1, size - 1);
  if (data[0] % 2 == 1) {
    rest = relsupd::FrameHandover(relsupd::HandoverImage{
        .format_version = relsupd::kHandoverVersion,
        .min_reader_version = relsupd::kHandoverMinReader,
        .core_count = 0,
        .core_table = "",
        .payload = rest});
  }
  auto r = relsupd::ParseHandover(rest);
  if (relsupd::fuzz::Refused(r)) return 0;
  CheckDecoded(*r);
  return 0;
}
