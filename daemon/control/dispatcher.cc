#include "daemon/control/dispatcher.h"

#include <spdlog/spdlog.h>

#include <cassert>

namespace relsupd {

using rpc::Json;

void Dispatcher::Register(std::string name, Right needed, Handler handler) {
  [[maybe_unused]] bool inserted =
      methods_.emplace(std::move(name), Method{needed, std::move(handler)}).second;
  assert(inserted);
}

std::string Dispatcher::HandleLine(const std::string& line, const Peer& peer) {
  Json request = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded())
    return rpc::Frame(rpc::MakeError(nullptr, rpc::kParseError,
                                     "parse error: the request is not valid JSON"));
  if (!request.is_array()) {
    Json response = HandleOne(request, peer);
    return response.is_null() ? "" : rpc::Frame(response);
  }
  if (request.empty())
    return rpc::Frame(rpc::MakeError(nullptr, rpc::kInvalidRequest,
                                     "invalid request: empty batch"));
  if (request.size() > kMaxBatch)
    return rpc::Frame(rpc::MakeError(
        nullptr, rpc::kInvalidRequest,
        "invalid request: a batch holds at most " + std::to_string(kMaxBatch) +
            " requests"));
  Json responses = Json::array();
  for (const Json& one : request) {
    Json r = HandleOne(one, peer);
    if (!r.is_null()) responses.push_back(std::move(r));
  }
  return responses.empty() ? "" : rpc::Frame(responses);
}

Json Dispatcher::HandleOne(const Json& req, const Peer& peer) {
  if (!req.is_object())
    return rpc::MakeError(nullptr, rpc::kInvalidRequest,
                          "invalid request: expected an object");
  auto id_it = req.find("id");
  const bool notification = id_it == req.end();
  Json id = notification ? Json(nullptr) : *id_it;
  if (!id.is_null() && !id.is_string() && !id.is_number())
    return rpc::MakeError(nullptr, rpc::kInvalidRequest,
                          "invalid request: 'id' must be a string, number or null");
  auto v = req.find("jsonrpc");
  if (v == req.end() || *v != "2.0")
    return rpc::MakeError(id, rpc::kInvalidRequest,
                          "invalid request: 'jsonrpc' must be \"2.0\"");
  auto m = req.find("method");
  if (m == req.end() || !m->is_string())
    return rpc::MakeError(id, rpc::kInvalidRequest,
                          "invalid request: 'method' must be a string");
  auto p = req.find("params");
  if (p != req.end() && !p->is_object() && !p->is_array())
    return rpc::MakeError(id, rpc::kInvalidRequest,
                          "invalid request: 'params' must be an object or array");
  const std::string& name = m->get_ref<const std::string&>();
  auto method = methods_.find(name);
  Json response;
  if (method == methods_.end()) {
    response = rpc::MakeError(id, rpc::kMethodNotFound,
                              "method not found: '" + name + "'");
  } else if (peer.right < method->second.needed) {
    spdlog::warn("Refused '{}' to uid {} ({}): needs the {} right", name,
                 peer.uid, peer.name, RightName(method->second.needed));
    response = rpc::MakeError(
        id, rpc::kPermissionDenied,
        RefusalMessage(name, method->second.needed, peer, *policy_));
  } else if (p != req.end() && p->is_array() && !p->empty()) {
    response = rpc::MakeError(id, rpc::kInvalidParams,
                              "invalid params: '" + name +
                                  "' takes named params (an object)");
  } else {
    static const Json kEmpty = Json::object();
    const Json& params = (p == req.end() || p->is_array()) ? kEmpty : *p;
    Result<Json> result = [&]() -> Result<Json> {
      try {
        return method->second.handler(params, peer);
      } catch (const std::exception& e) {
        // A handler bug must not take the daemon down with it.
        spdlog::error("Method '{}' threw: {}", name, e.what());
        return Internal(std::string("internal error: ") + e.what());
      }
    }();
    response = result.ok() ? rpc::MakeResult(id, std::move(result).value())
                           : rpc::MakeError(id, rpc::CodeForStatus(result.status()),
                                            result.status().message());
  }
  return notification ? Json(nullptr) : response;
}

}  // namespace relsupd
