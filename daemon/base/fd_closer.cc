#include "daemon/base/fd_closer.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace relsupd {

struct FdCloser::Shared {
  mutable std::mutex mu;
  std::condition_variable wake;  // the thread waits for work or `stop`
  std::condition_variable done;  // the destructor waits for `finished`
  std::deque<int> queue;
  bool closing = false;  // the thread is inside close()
  std::chrono::steady_clock::time_point close_started;
  bool stop = false;
  bool finished = false;
};

FdCloser::FdCloser(size_t capacity)
    : capacity_(capacity), shared_(std::make_shared<Shared>()) {
  // The thread holds its own reference: it may outlive this object when a
  // close() is stuck at shutdown.
  std::thread(&FdCloser::Run, shared_).detach();
}

FdCloser::~FdCloser() {
  std::unique_lock lock(shared_->mu);
  shared_->stop = true;
  shared_->wake.notify_one();
  shared_->done.wait_for(lock, std::chrono::seconds(2),
                         [this] { return shared_->finished; });
}

void FdCloser::Run(std::shared_ptr<Shared> shared) {
  // Signals are for the loop thread; here one would also cut a lingering
  // close() short.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock lock(shared->mu);
  for (;;) {
    shared->wake.wait(lock, [&] { return shared->stop || !shared->queue.empty(); });
    if (shared->queue.empty()) break;  // stop, and nothing left
    int fd = shared->queue.front();
    shared->queue.pop_front();
    shared->closing = true;
    shared->close_started = std::chrono::steady_clock::now();
    lock.unlock();
    ::close(fd);  // may block: that is why it is here
    lock.lock();
    shared->closing = false;
  }
  shared->finished = true;
  shared->done.notify_all();
}

void FdCloser::Close(Fd fd) {
  if (!fd.valid()) return;
  std::lock_guard lock(shared_->mu);
  shared_->queue.push_back(fd.Release());
  shared_->wake.notify_one();
}

void FdCloser::CloseAll(std::deque<Fd>* fds) {
  if (fds->empty()) return;
  std::lock_guard lock(shared_->mu);
  for (Fd& fd : *fds)
    if (fd.valid()) shared_->queue.push_back(fd.Release());
  fds->clear();
  shared_->wake.notify_one();
}

size_t FdCloser::pending() const {
  std::lock_guard lock(shared_->mu);
  return shared_->queue.size() + (shared_->closing ? 1 : 0);
}

size_t FdCloser::room() const {
  size_t n = pending();
  return n >= capacity_ ? 0 : capacity_ - n;
}

int64_t FdCloser::stuck_ms() const {
  std::lock_guard lock(shared_->mu);
  if (!shared_->closing) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - shared_->close_started)
      .count();
}

}  // namespace relsupd
