#include "daemon/control/dispatcher.h"

#include <spdlog/spdlog.h>

#include <cassert>
#include <cctype>
#include <chrono>
#include <memory>

namespace relsupd {

using rpc::Json;

namespace {

// "ok", "invalid-argument", "i/o-error": a status as a metrics label.
std::string OutcomeLabel(const Status& s) {
  std::string label(StatusCodeName(s.code()));
  for (char& c : label) c = c == ' ' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return label;
}

// The id of a response object (a string, number or null: HandleOne checked).
Json IdOf(const Json& response) {
  auto it = response.find("id");
  return it == response.end() ? Json(nullptr) : *it;
}

std::string TooLarge(const Json& id, size_t bytes, const char* what) {
  return rpc::MakeError(id, rpc::kReplyTooLarge,
                        std::string("reply too large: ") + what + " " +
                            std::to_string(bytes) + " bytes, over the limit of " +
                            std::to_string(rpc::kMaxReplyBytes) +
                            " bytes (kMaxReplyBytes); ask for less (a page)")
      .dump();
}

}  // namespace

Dispatcher::~Dispatcher() { Stop(); }

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

void Dispatcher::RunOnLoop(uv_loop_t* loop, FdCloser* closer) {
  closer_ = closer;
  uv_idle_init(loop, idle_.get());
  idle_->data = this;
}

void Dispatcher::Stop() {
  idle_.Close();
  idle_running_ = false;
  DropQueued();
}

void Dispatcher::DropQueued() {
  if (closer_ != nullptr)
    for (auto& [key, lane] : lanes_)
      for (auto& line : lane.lines) closer_->CloseAll(&line->fds);
  lanes_.clear();
  fresh_.clear();
  ready_.clear();
}

void Dispatcher::Pause() {
  paused_ = true;
  if (idle_running_) uv_idle_stop(idle_.get());
  idle_running_ = false;
}

void Dispatcher::Resume() {
  paused_ = false;
  if (HasWork() && idle_.initialized()) StartIdle();
}

void Dispatcher::StartIdle() {
  if (idle_running_ || paused_) return;
  uv_idle_start(idle_.get(), &Dispatcher::OnIdle);
  idle_running_ = true;
}

void Dispatcher::OnIdle(uv_idle_t* idle) {
  auto* self = static_cast<Dispatcher*>(idle->data);
  if (self == nullptr) return;
  self->RunSlice();
  if (!self->HasWork() && self->idle_running_) {
    uv_idle_stop(idle);
    self->idle_running_ = false;
  }
}

std::string Dispatcher::HandleLine(const std::string& line, const Peer& peer) {
  std::string out;
  std::deque<Fd> fds;
  HandleLine(line, peer, &fds, [&out](std::string s) { out = std::move(s); });
  return out;
}

void Dispatcher::HandleLine(const std::string& text, const Peer& peer,
                            std::deque<Fd>* fds,
                            std::function<void(std::string)> respond) {
  const LaneKey key{peer.uid, peer.pid};
  Lane& lane = lanes_[key];
  if (lane.lines.size() >= kMaxQueuedLines ||
      lane.bytes + text.size() > kMaxQueuedBytes) {
    if (lane.refused++ == 0)
      spdlog::warn("Refused a request of uid {} ({}): {} requests already waiting (further "
                   "refusals are counted until they are answered)",
                   peer.uid, peer.name, lane.lines.size());
    const bool idle_lane = lane.lines.empty();
    if (idle_lane) lanes_.erase(key);
    return respond(rpc::Frame(rpc::MakeError(
        nullptr, rpc::kBusy,
        "busy: this peer already has " + std::to_string(kMaxQueuedLines) +
            " requests (or " + std::to_string(kMaxQueuedBytes) +
            " bytes) waiting; the limit is per peer (kMaxQueuedLines)")));
  }
  auto line = std::make_unique<Line>();
  line->text = text;
  line->bytes = text.size();
  line->peer = peer;
  line->fds = std::move(*fds);
  fds->clear();
  line->respond = std::move(respond);
  // A lane that had nothing to do goes first: a peer's next request waits
  // for the step now running, not behind every lane busy with a batch.
  if (lane.lines.empty()) fresh_.push_back(key);
  lane.bytes += text.size();
  lane.lines.push_back(std::move(line));
  if (idle_.initialized()) return StartIdle();
  while (HasWork() && !paused_) RunSlice();
}

void Dispatcher::RunSlice() {
  const auto start = std::chrono::steady_clock::now();
  do {
    std::deque<LaneKey>& from = fresh_.empty() ? ready_ : fresh_;
    const LaneKey key = from.front();
    from.pop_front();
    auto it = lanes_.find(key);
    if (it == lanes_.end() || it->second.lines.empty()) continue;
    // The line leaves its lane while it runs: a handler may queue more
    // lines (tests) or the lane may be refilled meanwhile.
    std::unique_ptr<Line> line = std::move(it->second.lines.front());
    it->second.lines.pop_front();
    bool done = false;
    try {
      done = Step(*line);
    } catch (const std::exception& e) {
      // Nothing in a step should throw; a bug must not take the daemon down.
      spdlog::error("Request step threw: {}", e.what());
      if (!line->batch) line->respond(rpc::Frame(rpc::MakeError(
          nullptr, rpc::kInternalError, std::string("internal error: ") + e.what())));
      done = true;
    }
    Lane& lane = lanes_[key];
    if (done) {
      lane.bytes -= std::min(lane.bytes, line->bytes);
      if (closer_ != nullptr) closer_->CloseAll(&line->fds);
    } else {
      lane.lines.push_front(std::move(line));
    }
    if (!lane.lines.empty()) {
      ready_.push_back(key);
    } else {
      if (lane.refused > 1)
        spdlog::warn("Refused {} requests of uid {} ({}) in all while its queue was full",
                     lane.refused, line->peer.uid, line->peer.name);
      lanes_.erase(key);
    }
    // `line` (if done) goes here; its untaken fds went to the closer.
  } while (HasWork() && !paused_ &&
           std::chrono::steady_clock::now() - start <
               std::chrono::microseconds(kSliceBudgetUs));
}

bool Dispatcher::Step(Line& line) {
  if (!line.parsed) {
    Status depth = rpc::CheckDepth(line.text);
    if (!depth.ok()) {
      spdlog::warn("Refused a request of uid {} ({}): {}", line.peer.uid,
                   line.peer.name, depth.message());
      line.respond(rpc::Frame(rpc::MakeError(
          nullptr, rpc::kInvalidRequest, "invalid request: " + depth.message())));
      return true;
    }
    Json request = Json::parse(line.text, nullptr, /*allow_exceptions=*/false);
    std::string().swap(line.text);  // parsed: the text is not needed any more
    if (request.is_discarded()) {
      line.respond(rpc::Frame(rpc::MakeError(
          nullptr, rpc::kParseError, "parse error: the request is not valid JSON")));
      return true;
    }
    if (request.is_array() && request.empty()) {
      line.respond(rpc::Frame(rpc::MakeError(nullptr, rpc::kInvalidRequest,
                                             "invalid request: empty batch")));
      return true;
    }
    if (request.is_array() && request.size() > kMaxBatch) {
      line.respond(rpc::Frame(rpc::MakeError(
          nullptr, rpc::kInvalidRequest,
          "invalid request: a batch holds at most " + std::to_string(kMaxBatch) +
              " requests (kMaxBatch), this one " + std::to_string(request.size()))));
      return true;
    }
    line.parsed = std::move(request);
    if (!line.parsed->is_array()) {
      HandleOne(*line.parsed, line.peer, &line.fds, false,
                [respond = line.respond](Json response) {
                  if (response.is_null()) return respond(std::string());
                  std::string framed = rpc::Frame(response);
                  if (framed.size() > rpc::kMaxReplyBytes)
                    framed = TooLarge(IdOf(response), framed.size(), "the result is") + "\n";
                  respond(std::move(framed));
                });
      return true;
    }
    line.batch = std::make_shared<Batch>();
    line.batch->responses.resize(line.parsed->size());
    line.batch->pending = line.parsed->size();
    line.batch->respond = line.respond;
    return false;  // the requests run in the next steps, one each
  }
  const size_t i = line.next++;
  HandleOne((*line.parsed)[i], line.peer, &line.fds, true,
            [batch = line.batch, i](Json response) {
              if (!response.is_null()) {
                std::string s = rpc::Frame(response);
                s.pop_back();  // the '\n'
                // The batch's replies together stay within the budget: a
                // reply that would pass it is replaced by an error.
                if (batch->bytes + s.size() + 2 > rpc::kMaxReplyBytes)
                  s = TooLarge(IdOf(response), batch->bytes + s.size(),
                               "the batch's replies together would be");
                batch->bytes += s.size() + 1;
                batch->responses[i] = std::move(s);
              }
              if (--batch->pending > 0) return;
              std::string out;
              out.reserve(batch->bytes + 3);
              for (std::string& r : batch->responses) {
                if (r.empty()) continue;
                out += out.empty() ? "[" : ",";
                out += r;
                std::string().swap(r);
              }
              if (!out.empty()) out += "]\n";
              batch->respond(std::move(out));
            });
  if (line.next < line.parsed->size()) return false;
  line.parsed.reset();  // every request is dispatched; async ones copied theirs
  return true;
}

void Dispatcher::HandleOne(const Json& req, const Peer& peer,
                           std::deque<Fd>* fds, bool in_batch,
                           std::function<void(Json)> done) {
  if (!req.is_object())
    return done(rpc::MakeError(nullptr, rpc::kInvalidRequest,
                               "invalid request: expected an object"));
  // The id's type is checked before anything copies it.
  auto id_it = req.find("id");
  const bool notification = id_it == req.end();
  if (!notification && !id_it->is_null() && !id_it->is_string() &&
      !id_it->is_number())
    return done(rpc::MakeError(
        nullptr, rpc::kInvalidRequest,
        "invalid request: 'id' must be a string, number or null"));
  Json id = notification ? Json(nullptr) : *id_it;
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
  if (method == methods_.end()) {
    ++(*counts_)[{"(unknown)", "method-not-found"}];
    return finish(rpc::MakeError(
        id, rpc::kMethodNotFound,
        "method not found: '" + (name.size() > 64 ? name.substr(0, 64) + "..." : name) +
            "'"));
  }
  const auto& [needed, handler] = method->second;
  if (peer.right < needed) {
    spdlog::warn("Refused '{}' to uid {} ({}): needs the {} right", name,
                 peer.uid, peer.name, RightName(needed));
    ++(*counts_)[{name, "permission-denied"}];
    return finish(rpc::MakeError(id, rpc::kPermissionDenied,
                                 RefusalMessage(name, needed, peer, *policy_)));
  }
  if (p != req.end() && p->is_array() && !p->empty())
    return finish(rpc::MakeError(
        id, rpc::kInvalidParams,
        "invalid params: '" + name + "' takes named params (an object)"));
  static const Json kEmpty = Json::object();
  const Json& params = (p == req.end() || p->is_array()) ? kEmpty : *p;
  Reply reply = [finish, id, counts = counts_, name](Result<Json> result) {
    ++(*counts)[{name, OutcomeLabel(result.status())}];
    finish(result.ok() ? rpc::MakeResult(id, std::move(result).value())
                       : rpc::MakeError(id, rpc::CodeForStatus(result.status()),
                                        result.status().message()));
  };
  try {
    handler(Request{params, peer, fds, id, in_batch}, reply);
  } catch (const std::exception& e) {
    // A handler bug must not take the daemon down with it.
    spdlog::error("Method '{}' threw: {}", name, e.what());
    reply(Internal(std::string("internal error: ") + e.what()));
  }
}

}  // namespace relsupd
