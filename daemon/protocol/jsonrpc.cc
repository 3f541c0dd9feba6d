#include "daemon/protocol/jsonrpc.h"

namespace relsupd::rpc {

int CodeForStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument: return kInvalidParams;
    case StatusCode::kNotFound: return kNotFound;
    case StatusCode::kAlreadyExists: return kAlreadyExists;
    case StatusCode::kPermissionDenied: return kPermissionDenied;
    case StatusCode::kFailedPrecondition: return kFailedPrecondition;
    case StatusCode::kBusy: return kBusy;
    case StatusCode::kCorruption: return kCorruption;
    case StatusCode::kInternal: return kInternalError;
    default: return kServerError;
  }
}

Status StatusFromError(const Json& error) {
  std::string message = "malformed error from the daemon";
  int code = kServerError;
  if (error.is_object()) {
    if (auto m = error.find("message"); m != error.end() && m->is_string())
      message = m->get<std::string>();
    if (auto c = error.find("code"); c != error.end() && c->is_number_integer())
      code = c->get<int>();
  }
  StatusCode sc = StatusCode::kFailedPrecondition;
  switch (code) {
    case kParseError:
    case kInvalidRequest:
    case kInvalidParams:
    case kRequestTooLarge:
    case kReplyTooLarge: sc = StatusCode::kInvalidArgument; break;
    case kMethodNotFound:
    case kNotFound: sc = StatusCode::kNotFound; break;
    case kAlreadyExists: sc = StatusCode::kAlreadyExists; break;
    case kPermissionDenied: sc = StatusCode::kPermissionDenied; break;
    case kBusy: sc = StatusCode::kBusy; break;
    case kCorruption: sc = StatusCode::kCorruption; break;
    case kInternalError: sc = StatusCode::kInternal; break;
    default: break;
  }
  return Status(sc, message);
}

Json MakeRequest(const Json& id, std::string_view method, Json params) {
  Json j = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) j["params"] = std::move(params);
  return j;
}

Json MakeResult(const Json& id, Json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

Json MakeError(const Json& id, int code, std::string_view message) {
  return {{"jsonrpc", "2.0"},
          {"id", id},
          {"error", {{"code", code}, {"message", message}}}};
}

Status CheckDepth(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped byte cannot close the string
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth)
          return InvalidArgument("message nests arrays and objects deeper than " +
                                 std::to_string(max_depth) + " levels (at byte " +
                                 std::to_string(i) + ")");
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return Status::Ok();
}

Result<Json> ParseMessage(std::string_view text, size_t max_depth) {
  RETURN_IF_ERROR(CheckDepth(text, max_depth));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("the message is not valid JSON");
  return j;
}

std::string Frame(const Json& message) {
  std::string s =
      message.dump(-1, ' ', false, Json::error_handler_t::replace);
  s += '\n';
  return s;
}

LineBuffer::Next LineBuffer::Pop(std::string* line) {
  size_t nl = buf_.find('\n', start_);
  if (nl == std::string::npos) {
    if (buffered() > limit_) return Next::kTooLong;
    // Compact now and then so the buffer does not grow with consumed bytes.
    if (start_ > 0 && start_ >= buf_.size() / 2) {
      buf_.erase(0, start_);
      start_ = 0;
    }
    return Next::kNeedMore;
  }
  if (nl - start_ > limit_) return Next::kTooLong;
  line->assign(buf_, start_, nl - start_);
  if (!line->empty() && line->back() == '\r') line->pop_back();
  start_ = nl + 1;
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  }
  return Next::kLine;
}

}  // namespace relsupd::rpc
