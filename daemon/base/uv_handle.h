#pragma once
// UvHandle<T>: one libuv handle owned by one object.
//
// Not copyable or movable: libuv keeps the handle's address. The handle's
// memory is heap-allocated and outlives uv_close until the close callback
// frees it, so the owner may be destroyed at any time. `data` points at the
// owner while it lives and is nulled on destruction, so late callbacks can
// tell. Loop thread only.

#include <uv.h>

#include <cassert>

namespace relsupd {

template <typename T>
class UvHandle {
 public:
  UvHandle() : h_(new T{}) {}
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  ~UvHandle() { Close(); }

  T* get() const { return h_; }
  T* operator->() const { return h_; }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_); }
  uv_stream_t* stream() const { return reinterpret_cast<uv_stream_t*>(h_); }
  bool initialized() const { return h_ != nullptr && h_->loop != nullptr; }

  // Closes the handle now; its memory is freed by the close callback. A
  // handle that was never initialised is freed at once.
  void Close() {
    if (h_ == nullptr) return;
    T* h = h_;
    h_ = nullptr;
    h->data = nullptr;
    auto* base = reinterpret_cast<uv_handle_t*>(h);
    if (h->loop == nullptr) {
      delete h;
      return;
    }
    if (uv_is_closing(base)) return;  // someone else closes; never happens
    uv_close(base, [](uv_handle_t* x) { delete reinterpret_cast<T*>(x); });
  }

 private:
  T* h_;
};

// Closes every handle on `loop` and runs it until uv_loop_close succeeds or
// `max_iterations` passes have run, waiting for pending requests (thread-
// pool jobs) to finish. Returns the last uv_loop_close result.
int CloseLoop(uv_loop_t* loop, int max_iterations = 1000);

}  // namespace relsupd
