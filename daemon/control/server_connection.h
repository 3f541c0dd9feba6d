#pragma once
// ControlServer's connection (server.h), shared by server.cc and
// server_reexec.cc only. Loop thread.

#include <deque>
#include <string>

#include "daemon/base/fd.h"
#include "daemon/base/uv_handle.h"
#include "daemon/control/peer.h"
#include "daemon/control/server.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd {

struct ControlServer::Connection {
  ControlServer* server = nullptr;
  Fd fd;
  UvHandle<uv_poll_t> poll;
  UvHandle<uv_timer_t> idle;
  rpc::LineBuffer input;
  std::deque<Fd> fds;  // passed with SCM_RIGHTS, not yet taken
  // Framed responses not yet written, one chunk each (no reallocation of
  // one big string); output_off is the written part of the first.
  std::deque<std::string> output;
  size_t output_off = 0;
  size_t pending_bytes = 0;
  size_t input_counted = 0;  // input.buffered() as counted in the totals
  Peer peer;
  int in_flight = 0;     // requests whose answer is still to come
  bool reading = true;   // false once the client sent EOF or was refused
  bool fd_paused = false;  // not read until the FdCloser has room
  bool dropped = false;    // out of connections_, socket closed or handed over
  int poll_events = 0;
  explicit Connection(size_t limit) : input(limit) {}
  size_t pending() const { return pending_bytes; }
  bool change() const { return peer.right == Right::kChange; }
};

}  // namespace relsupd
