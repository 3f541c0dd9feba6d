#include "daemon/reexec/memfd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "daemon/base/sha256.h"
#include "daemon/reexec/handover_codec.h"

namespace relsupd {
namespace {

constexpr char kMagic[8] = {'R', 'S', 'U', 'P', 'D', 'H', 'O', '\0'};
constexpr int kAllSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
// The most core entries a record within the cap could have.
constexpr uint64_t kMaxCoreCount = kMaxHandoverBytes / kCoreEntryBytes;

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[at + i]);
  return v;
}

// The 32 raw bytes of the SHA-256 of `data`.
std::string Digest(std::string_view data) {
  std::string hex = Sha256Hex(data);
  std::string raw;
  for (size_t i = 0; i < hex.size(); i += 2)
    raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return raw;
}

}  // namespace

std::string FrameHandover(const HandoverImage& image) {
  assert(image.core_table.size() == image.core_count * kCoreEntryBytes);
  std::string out(kMagic, sizeof kMagic);
  PutLe(&out, kHandoverHeaderBytes, 4);
  PutLe(&out, image.format_version, 4);
  PutLe(&out, image.min_reader_version, 4);
  PutLe(&out, image.core_count, 4);
  PutLe(&out, image.payload.size(), 8);
  out += Digest(image.core_table);
  out += Digest(image.payload);
  assert(out.size() == kHandoverHeaderBytes);
  return out + image.core_table + image.payload;
}

Result<HandoverImage> UnframeHandover(std::string_view bytes) {
  if (bytes.size() < kHandoverHeaderBytes)
    return Corruption("the handover is " + std::to_string(bytes.size()) +
                      " bytes, shorter than its header");
  if (bytes.substr(0, sizeof kMagic) != std::string_view(kMagic, sizeof kMagic))
    return Corruption("the handover does not start with relsupd's magic");
  if (GetLe(bytes, 8, 4) != kHandoverHeaderBytes)
    return Corruption("the handover's header size is " + std::to_string(GetLe(bytes, 8, 4)) +
                      ", not " + std::to_string(kHandoverHeaderBytes));
  HandoverImage image;
  image.format_version = static_cast<uint32_t>(GetLe(bytes, 12, 4));
  image.min_reader_version = static_cast<uint32_t>(GetLe(bytes, 16, 4));
  image.core_count = static_cast<uint32_t>(GetLe(bytes, 20, 4));
  uint64_t payload_size = GetLe(bytes, 24, 8);
  if (image.core_count > kMaxCoreCount || payload_size > kMaxHandoverBytes)
    return Corruption("the handover's header claims sizes over the " +
                      std::to_string(kMaxHandoverBytes >> 20) + " MiB cap");
  uint64_t core_size = uint64_t{image.core_count} * kCoreEntryBytes;
  uint64_t want = kHandoverHeaderBytes + core_size + payload_size;
  if (bytes.size() != want)
    return Corruption("the handover is " + std::to_string(bytes.size()) +
                      " bytes; its header says " + std::to_string(want));
  image.core_table = bytes.substr(kHandoverHeaderBytes, core_size);
  image.payload = bytes.substr(kHandoverHeaderBytes + core_size);
  if (Digest(image.core_table) != bytes.substr(32, 32))
    return Corruption("the handover's core table does not match its SHA-256");
  if (Digest(image.payload) != bytes.substr(64, 32))
    return Corruption("the handover's payload does not match its SHA-256");
  return image;
}

Result<HandoverRecord> ParseHandover(std::string_view bytes) {
  ASSIGN_OR_RETURN(HandoverImage image, UnframeHandover(bytes));
  // Both fit an int: a larger version fails the check as "newer".
  auto version = [](uint32_t v) { return static_cast<int>(std::min<uint32_t>(v, 1u << 30)); };
  RETURN_IF_ERROR(CheckHandoverVersions(version(image.format_version),
                                        version(image.min_reader_version)));
  return DecodeHandover(image.payload, version(image.format_version));
}

Result<Fd> WriteSealedMemfd(std::string_view bytes) {
  int raw = ::memfd_create("relsupd-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (raw < 0) return Status::FromErrno("cannot create the handover memfd", errno);
  Fd fd(raw);
  RETURN_IF_ERROR(WriteAll(fd.get(), bytes, "the handover memfd"));
  if (::fcntl(fd.get(), F_ADD_SEALS, kAllSeals) != 0)
    return Status::FromErrno("cannot seal the handover memfd", errno);
  return fd;
}

Result<std::string> ReadSealedMemfd(int fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return Status::FromErrno("handover fd " + std::to_string(fd) + " is not a memfd",
                                          errno);
  if ((seals & kAllSeals) != kAllSeals)
    return Corruption("handover fd " + std::to_string(fd) + " is not sealed");
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno("cannot stat the handover memfd", errno);
  auto size = static_cast<uint64_t>(st.st_size);
  if (size > kHandoverHeaderBytes + 2 * kMaxHandoverBytes)
    return Corruption("the handover memfd is " + std::to_string(size) + " bytes, over the cap");
  std::string bytes(size, '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot read the handover memfd", errno);
    if (n == 0) return Corruption("the handover memfd ended early");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

Result<Fd> WriteHandover(const HandoverRecord& record) {
  ASSIGN_OR_RETURN(std::string payload, EncodeHandover(record));
  HandoverImage image{.format_version = kHandoverVersion,
                      .min_reader_version = kHandoverMinReader,
                      .core_count = 0,
                      .core_table = "",
                      .payload = std::move(payload)};
  return WriteSealedMemfd(FrameHandover(image));
}

Result<HandoverRecord> ReadHandover(int fd) {
  ASSIGN_OR_RETURN(std::string bytes, ReadSealedMemfd(fd));
  return ParseHandover(bytes);
}

}  // namespace relsupd
