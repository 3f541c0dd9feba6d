#pragma once
// SHA-256 through nettle. Not OpenSSL: its EVP interface maps libcrypto
// (1.4 MiB resident) and sets up its providers at the first digest (1.9 MiB
// more) in a daemon that only ever hashes; libnettle is loaded anyway, by
// libarchive. Any thread.

#include <memory>
#include <string>
#include <string_view>

namespace relsupd {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  // The digest as 64 lower-case hex digits. Ends the hash.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);

}  // namespace relsupd
