#pragma once
// Reading a request's params: every handler refuses unknown keys and wrong
// types with an error that names the param. Any thread.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/base/status.h"
#include "daemon/control/peer.h"
#include "daemon/ledger/ledger.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd::params {

// InvalidArgument naming the first key of `params` not in `known`.
Status CheckKnown(const rpc::Json& params,
                  std::initializer_list<std::string_view> known);
// A required string param.
Result<std::string> String(const rpc::Json& params, const char* key);
// An optional string param (nullopt when absent).
Result<std::optional<std::string>> OptionalString(const rpc::Json& params,
                                                  const char* key);
// An optional integer param within [min, max].
Result<std::optional<int64_t>> OptionalInt(const rpc::Json& params,
                                           const char* key, int64_t min,
                                           int64_t max);
// The required "app" param, validated as an app name.
Result<std::string> App(const rpc::Json& params);
// The required release param ("v3" or "3") named `key`.
Result<int64_t> Release(const rpc::Json& params, const char* key);
inline Actor ActorOf(const Peer& p) { return Actor{p.uid, p.name}; }

}  // namespace relsupd::params
