#include "daemon/control/params.h"

#include "daemon/base/suggest.h"

#include "daemon/base/release_id.h"
#include "daemon/config/app_spec.h"
#include "daemon/store/release_service.h"

namespace relsupd::params {

Status CheckKnown(const rpc::Json& params,
                  std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : params.items()) {
    bool ok = false;
    for (auto n : known) ok = ok || n == k;
    if (!ok) return InvalidArgument("unknown param '" + Excerpt(k) + "'");
  }
  return Status::Ok();
}

Result<std::string> String(const rpc::Json& params, const char* key) {
  auto it = params.find(key);
  if (it == params.end())
    return InvalidArgument(std::string("missing param '") + key + "'");
  if (!it->is_string())
    return InvalidArgument(std::string("param '") + key + "' must be a string");
  return it->get<std::string>();
}

Result<std::optional<std::string>> OptionalString(const rpc::Json& params,
                                                  const char* key) {
  if (!params.contains(key)) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string s, String(params, key));
  return std::optional<std::string>(std::move(s));
}

Result<std::optional<int64_t>> OptionalInt(const rpc::Json& params,
                                           const char* key, int64_t min,
                                           int64_t max) {
  auto it = params.find(key);
  if (it == params.end()) return std::optional<int64_t>();
  if (!it->is_number_integer())
    return InvalidArgument(std::string("param '") + key +
                           "' must be an integer");
  int64_t v = it->get<int64_t>();
  if (v < min || v > max)
    return InvalidArgument(std::string("param '") + key + "' must be " +
                           std::to_string(min) + ".." + std::to_string(max));
  return std::optional<int64_t>(v);
}

Result<std::string> App(const rpc::Json& params) {
  ASSIGN_OR_RETURN(std::string app, String(params, "app"));
  RETURN_IF_ERROR(ValidateAppName(app));
  return app;
}

Result<int64_t> Release(const rpc::Json& params, const char* key) {
  ASSIGN_OR_RETURN(std::string text, String(params, key));
  ASSIGN_OR_RETURN(ReleaseId id,
                   ReleaseId::Parse(text, ReleaseId::Prefix::kOptional));
  return id.number();
}

}  // namespace relsupd::params
