#include "daemon/base/sha256.h"

#include <nettle/sha2.h>

#include <cstdint>

namespace relsupd {

struct Sha256::Impl {
  sha256_ctx ctx;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) { sha256_init(&impl_->ctx); }

Sha256::~Sha256() = default;

void Sha256::Update(std::string_view data) {
  sha256_update(&impl_->ctx, data.size(),
                reinterpret_cast<const uint8_t*>(data.data()));
}

std::string Sha256::HexDigest() {
  uint8_t md[SHA256_DIGEST_SIZE];
  sha256_digest(&impl_->ctx, sizeof md, md);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof md);
  for (uint8_t b : md) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

}  // namespace relsupd
