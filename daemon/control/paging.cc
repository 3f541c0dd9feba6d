#include "daemon/control/paging.h"

namespace relsupd::paging {

rpc::Json CappedList(const std::vector<std::string>& all, bool* truncated) {
  rpc::Json out = rpc::Json::array();
  size_t bytes = 0;
  for (const std::string& s : all) {
    bytes += s.size() + 3;  // quotes and comma; escapes are rare in paths
    if (out.size() >= kMaxListItems || bytes > kMaxListBytes) {
      *truncated = true;
      break;
    }
    out.push_back(s);
  }
  return out;
}

size_t SerialisedSize(const rpc::Json& j) {
  return j.dump(-1, ' ', false, rpc::Json::error_handler_t::replace).size();
}

}  // namespace relsupd::paging
