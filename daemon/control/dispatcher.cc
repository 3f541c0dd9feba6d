#include "daemon/control/dispatcher.h"

#include <spdlog/spdlog.h>

#include <cassert>
#include <memory>

namespace relsupd {

using rpc::Json;

void Dispatcher::Register(std::string name, Right needed, Handler handler) {
  RegisterAsync(std::move(name), needed,
                [h = std::move(handler)](const Request& r, Reply reply) {
                  reply(h(r));
                });
}

void Dispatcher::RegisterAsync(std::string name, Right needed,
                               AsyncHandler handler) {
  [[maybe_unused]] bool inserted =
      methods_.emplace(std::move(name), std::make_pair(needed, std::move(handler)))
          .second;
  assert(inserted);
}

std::string Dispatcher::HandleLine(const std::string& line, const Peer& peer) {
  std::string out;
  std::deque<Fd> fds;
  HandleLine(line, peer, &fds, [&out](std::string s) { out = std::move(s); });
  return out;
}

void Dispatcher::HandleLine(const std::string& line, const Peer& peer,
                            std::deque<Fd>* fds,
                            std::function<void(std::string)> respond) {
  Json request = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded())
    return respond(rpc::Frame(rpc::MakeError(
        nullptr, rpc::kParseError, "parse error: the request is not valid JSON")));
  if (!request.is_array()) {
    return HandleOne(request, peer, fds, [respond](Json response) {
      respond(response.is_null() ? std::string() : rpc::Frame(response));
    });
  }
  if (request.empty())
    return respond(rpc::Frame(rpc::MakeError(nullptr, rpc::kInvalidRequest,
                                             "invalid request: empty batch")));
  if (request.size() > kMaxBatch)
    return respond(rpc::Frame(rpc::MakeError(
        nullptr, rpc::kInvalidRequest,
        "invalid request: a batch holds at most " + std::to_string(kMaxBatch) +
            " requests")));
  // Answers arrive in any order; the batch response goes out with the last.
  struct Batch {
    std::vector<Json> responses;
    size_t pending;
    std::function<void(std::string)> respond;
  };
  auto batch = std::make_shared<Batch>();
  batch->responses.resize(request.size());
  batch->pending = request.size();
  batch->respond = std::move(respond);
  for (size_t i = 0; i < request.size(); ++i) {
    HandleOne(request[i], peer, fds, [batch, i](Json response) {
      batch->responses[i] = std::move(response);
      if (--batch->pending > 0) return;
      Json out = Json::array();
      for (Json& r : batch->responses)
        if (!r.is_null()) out.push_back(std::move(r));
      batch->respond(out.empty() ? std::string() : rpc::Frame(out));
    });
  }
}

void Dispatcher::HandleOne(const Json& req, const Peer& peer,
                           std::deque<Fd>* fds,
                           std::function<void(Json)> done) {
  if (!req.is_object())
    return done(rpc::MakeError(nullptr, rpc::kInvalidRequest,
                               "invalid request: expected an object"));
  auto id_it = req.find("id");
  const bool notification = id_it == req.end();
  Json id = notification ? Json(nullptr) : *id_it;
  if (!id.is_null() && !id.is_string() && !id.is_number())
    return done(rpc::MakeError(
        nullptr, rpc::kInvalidRequest,
        "invalid request: 'id' must be a string, number or null"));
  auto v = req.find("jsonrpc");
  if (v == req.end() || *v != "2.0")
    return done(rpc::MakeError(id, rpc::kInvalidRequest,
                               "invalid request: 'jsonrpc' must be \"2.0\""));
  auto m = req.find("method");
  if (m == req.end() || !m->is_string())
    return done(rpc::MakeError(id, rpc::kInvalidRequest,
                               "invalid request: 'method' must be a string"));
  auto p = req.find("params");
  if (p != req.end() && !p->is_object() && !p->is_array())
    return done(rpc::MakeError(
        id, rpc::kInvalidRequest,
        "invalid request: 'params' must be an object or array"));
  // From here on a notification gets no answer, whatever happens.
  auto finish = [done, id, notification](Json response) {
    done(notification ? Json(nullptr) : std::move(response));
  };
  const std::string& name = m->get_ref<const std::string&>();
  auto method = methods_.find(name);
  if (method == methods_.end())
    return finish(rpc::MakeError(id, rpc::kMethodNotFound,
                                 "method not found: '" + name + "'"));
  const auto& [needed, handler] = method->second;
  if (peer.right < needed) {
    spdlog::warn("Refused '{}' to uid {} ({}): needs the {} right", name,
                 peer.uid, peer.name, RightName(needed));
    return finish(rpc::MakeError(id, rpc::kPermissionDenied,
                                 RefusalMessage(name, needed, peer, *policy_)));
  }
  if (p != req.end() && p->is_array() && !p->empty())
    return finish(rpc::MakeError(
        id, rpc::kInvalidParams,
        "invalid params: '" + name + "' takes named params (an object)"));
  static const Json kEmpty = Json::object();
  const Json& params = (p == req.end() || p->is_array()) ? kEmpty : *p;
  Reply reply = [finish, id](Result<Json> result) {
    finish(result.ok() ? rpc::MakeResult(id, std::move(result).value())
                       : rpc::MakeError(id, rpc::CodeForStatus(result.status()),
                                        result.status().message()));
  };
  try {
    handler(Request{params, peer, fds}, reply);
  } catch (const std::exception& e) {
    // A handler bug must not take the daemon down with it.
    spdlog::error("Method '{}' threw: {}", name, e.what());
    reply(Internal(std::string("internal error: ") + e.what()));
  }
}

}  // namespace relsupd
