// log_capture: the daemon's log capture path on its own, on one core
// (issue 17: "800 MB/s with 128-byte lines on one core").
//
// Runs the code every line a child prints goes through in the daemon
// (OutputCapture: the line splitter and the per-read batch; LogStore: the
// record encoding, the ring, the write(2) to current.log and its rotation)
// in this process, on a temporary state dir, and prints its throughput and
// its CPU per MB of payload. Two sources of the bytes:
//   - memory: reads of --read-kib KiB cut from lines made beforehand (the
//     capture path alone: what a pipe read costs is not in it), the store
//     flushed after every 32 reads (libuv's reads of a stream in one loop
//     iteration);
//   - pipe: a forked writer writes the lines into a pipe in 256 KiB
//     writes (as bench/log_writer does), and this process reads it with
//     libuv into a buffer of --read-kib KiB (the daemon's is 64 KiB), the
//     store flushed by a check handle after each loop iteration as in the
//     daemon; the pipe --pipe-kib KiB (F_SETPIPE_SZ; 0: the kernel's 64
//     KiB); the reader pinned to one CPU and the writer to another where
//     there is one.
// Each line is "seq=%09d " and a printable filler that depends on the
// line's number, --line-bytes bytes with the '\n'. After each run every
// record in the files is decoded and checked (seq, source, text): a
// lost, duplicated or damaged line fails the run. The figures of each
// source are the median of --runs runs.
//
//   build/bench/log_capture [--mb N] [--line-bytes N] [--read-kib N]
//                           [--pipe-kib N] [--runs N] [--source memory,pipe]
//                           [--keep]
//
// Exit code 0 whatever the figures (1 when a check fails), 2 on a usage
// error.

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "bench/bench_support.h"
#include "daemon/base/clock.h"
#include "daemon/logs/log_record.h"
#include "daemon/logs/log_store.h"
#include "daemon/supervise/output_capture.h"

namespace relsupd::bench {
namespace {

constexpr double kTargetMbPerSec = 800;  // issue 17, one core

struct Options {
  int64_t mb = 200;
  int64_t line_bytes = 128;
  int64_t read_kib = 64;
  int64_t pipe_kib = 0;  // 0: the kernel's default (64 KiB)
  int runs = 3;
  std::string sources = "memory,pipe";
  bool keep = false;
};

void Usage(FILE* f) {
  std::fprintf(f,
               "usage: log_capture [--mb N] [--line-bytes N] [--read-kib N] [--pipe-kib N]\n"
               "                   [--runs N] [--source memory,pipe] [--keep]\n");
}

// Line i, '\n' included, `bytes` long (at least 16).
void AppendLine(uint64_t i, size_t bytes, std::string* out) {
  char head[16];
  std::snprintf(head, sizeof head, "seq=%09llu ", static_cast<unsigned long long>(i));
  out->append(head, 14);
  for (size_t k = 14; k + 1 < bytes; ++k)
    out->push_back(static_cast<char>('!' + (i * 7 + k) % 94));
  out->push_back('\n');
}

std::string Lines(uint64_t count, size_t bytes) {
  std::string all;
  all.reserve(count * bytes);
  for (uint64_t i = 0; i < count; ++i) AppendLine(i, bytes, &all);
  return all;
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);  // best effort: a figure, not a check
}

struct Figures {
  double wall_s = 0, cpu_s = 0;
  uint64_t file_bytes = 0;
  std::string error;  // the check's
};

// Every record in DIR/bench/current.log* in seq order: line i's text,
// process log.1, stream out, not partial.
std::string Check(const std::string& app_dir, uint64_t lines, size_t line_bytes,
                  uint64_t* file_bytes) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(app_dir))
    files.push_back(e.path().string());
  // current.log.N (oldest first), then current.log.
  std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
    auto gen = [](const std::string& p) {
      auto dot = p.rfind(".log");
      return p.size() == dot + 4 ? 0 : std::atoi(p.c_str() + dot + 5);
    };
    return gen(a) > gen(b);
  });
  uint64_t next = 0;
  std::string want;
  *file_bytes = 0;
  for (const std::string& f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      *file_bytes += line.size() + 1;
      Result<LogRecord> r = DecodeLogRecord(line, "bench");
      if (!r.ok()) return f + ": " + r.status().ToString();
      want.clear();
      AppendLine(next, line_bytes, &want);
      want.pop_back();
      if (r->seq != next + 1 || r->text != want || r->process != "log.1" ||
          r->stream != "out" || r->partial)
        return f + ": record " + std::to_string(r->seq) + " is not line " +
               std::to_string(next);
      ++next;
    }
  }
  if (next != lines)
    return std::to_string(next) + " records in the files, not " + std::to_string(lines);
  return "";
}

// One run: the capture path on a fresh store, fed by `source`.
Figures RunOnce(const Options& o, const std::string& source, const std::string& all,
                uint64_t lines, const std::string& dir) {
  Figures fig;
  std::filesystem::remove_all(dir + "/logs");
  int p[2] = {-1, -1};
  if (source == "pipe") {
    if (pipe2(p, O_CLOEXEC) != 0) {
      fig.error = std::string("pipe2: ") + std::strerror(errno);
      return fig;
    }
    if (o.pipe_kib > 0 && fcntl(p[0], F_SETPIPE_SZ, static_cast<int>(o.pipe_kib * 1024)) < 0) {
      fig.error = std::string("F_SETPIPE_SZ: ") + std::strerror(errno);
      close(p[0]);
      close(p[1]);
      return fig;
    }
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  // Room for every record (about 60 bytes of fields each), so the check
  // after the run finds them all: the daemon's 64 MiB files, as many as
  // it takes.
  LogStoreOptions store_options;
  store_options.max_file_bytes = 64 << 20;
  const uint64_t file_bytes = lines * (static_cast<uint64_t>(o.line_bytes) + 64);
  store_options.max_files = static_cast<int>(file_bytes / store_options.max_file_bytes) + 2;
  auto store = LogStore::Open(dir + "/logs", store_options, RealClock());
  if (!store.ok()) {
    fig.error = store.status().ToString();
    uv_loop_close(&loop);
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
    return fig;
  }
  LogRatePolicy rate;
  rate.bytes_per_sec = int64_t{1} << 40;  // no throttling: the daemon's bench config
  rate.burst = int64_t{1} << 40;
  LogSource who{"bench", "v1", "log.1"};
  {
    const uint64_t turn = 0;  // no ChildProcess here to skip a turn of
    OutputCapture capture(&loop, &turn, &RealClock(), store->get(), rate, who);
    const size_t read_bytes = static_cast<size_t>(o.read_kib) * 1024;
    std::vector<char> buffer(read_bytes);
    if (source == "memory") {
      PinTo(0);
      const double cpu0 = CpuSeconds();
      const int64_t t0 = MonoNs();
      int reads = 0;
      for (size_t off = 0; off < all.size(); off += read_bytes) {
        const size_t n = std::min(read_bytes, all.size() - off);
        std::memcpy(buffer.data(), all.data() + off, n);  // what read(2) does
        capture.OnOutput(OutputStream::kOut, std::string_view(buffer.data(), n));
        // The daemon's flush after each loop iteration; libuv reads a
        // stream up to 32 times in one while its reads fill the buffer.
        if (++reads % 32 == 0) capture.FlushLogs();
      }
      capture.FlushLines();
      capture.FlushLogs();
      fig.wall_s = static_cast<double>(MonoNs() - t0) / 1e9;
      fig.cpu_s = CpuSeconds() - cpu0;
    } else {
      const int cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
      const double cpu0 = CpuSeconds();
      const int64_t t0 = MonoNs();
      pid_t writer = fork();
      if (writer == 0) {
        if (cpus > 1) PinTo(1);
        close(p[0]);
        for (size_t off = 0; off < all.size();) {
          ssize_t w = write(p[1], all.data() + off, std::min<size_t>(256 << 10, all.size() - off));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) _exit(1);
          off += static_cast<size_t>(w);
        }
        _exit(0);
      }
      close(p[1]);
      PinTo(0);
      // As the daemon reads: libuv with one read buffer, the store flushed
      // by a check handle after each loop iteration.
      struct Reader {
        OutputCapture* capture;
        std::vector<char>* buffer;
      } reader{&capture, &buffer};
      uv_pipe_t pipe;
      uv_check_t flush;
      uv_pipe_init(&loop, &pipe, 0);
      uv_pipe_open(&pipe, p[0]);
      pipe.data = &reader;
      uv_check_init(&loop, &flush);
      uv_unref(reinterpret_cast<uv_handle_t*>(&flush));  // the pipe keeps the loop running
      flush.data = &capture;
      uv_check_start(&flush, [](uv_check_t* h) {
        static_cast<OutputCapture*>(h->data)->FlushLogs();
      });
      uv_read_start(
          reinterpret_cast<uv_stream_t*>(&pipe),
          [](uv_handle_t* h, size_t, uv_buf_t* buf) {
            auto* r = static_cast<Reader*>(h->data);
            *buf = uv_buf_init(r->buffer->data(), static_cast<unsigned>(r->buffer->size()));
          },
          [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
            auto* r = static_cast<Reader*>(s->data);
            if (n > 0) {
              r->capture->OnOutput(OutputStream::kOut,
                                   std::string_view(buf->base, static_cast<size_t>(n)));
            } else if (n < 0) {
              uv_read_stop(s);
              uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
            }
          });
      uv_run(&loop, UV_RUN_DEFAULT);  // until the pipe's end: then only the check is left
      capture.FlushLines();
      capture.FlushLogs();
      fig.wall_s = static_cast<double>(MonoNs() - t0) / 1e9;
      fig.cpu_s = CpuSeconds() - cpu0;
      uv_close(reinterpret_cast<uv_handle_t*>(&flush), nullptr);
      uv_run(&loop, UV_RUN_DEFAULT);
      int status = 0;
      waitpid(writer, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fig.error = "the writer ended with " + DescribeStatus(status);
    }
  }
  store->reset();
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  if (fig.error.empty())
    fig.error = Check(dir + "/logs/bench", lines, static_cast<size_t>(o.line_bytes),
                      &fig.file_bytes);
  return fig;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseFlags(argc, argv, Usage,
                  {IntFlag("--mb", &o.mb, int64_t{1}, int64_t{4096}),
                   IntFlag("--line-bytes", &o.line_bytes, int64_t{16}, int64_t{16384}),
                   IntFlag("--read-kib", &o.read_kib, int64_t{1}, int64_t{1024}),
                   IntFlag("--pipe-kib", &o.pipe_kib, int64_t{0}, int64_t{1024}),
                   IntFlag("--runs", &o.runs, 1, 99), TextFlag("--source", &o.sources),
                   SwitchFlag("--keep", &o.keep)}))
    return UsageError(Usage);
  std::vector<std::string> sources = SplitCommas(o.sources);
  for (const std::string& s : sources)
    if (s != "memory" && s != "pipe") return UsageError(Usage);
  InstallInterruptHandlers();
  BenchDir dir;
  dir.keep = o.keep;
  if (!dir.Make("log_capture", "log_capture")) return 1;
  const uint64_t lines = static_cast<uint64_t>(o.mb) * 1'000'000 /
                         static_cast<uint64_t>(o.line_bytes);
  const std::string all = Lines(lines, static_cast<size_t>(o.line_bytes));
  const double mb = static_cast<double>(all.size()) / 1e6;
  std::printf("log_capture: %.0f MB of %lld-byte lines (%llu), reads of %lld KiB, "
              "median of %d runs, load average %s\n\n",
              mb, static_cast<long long>(o.line_bytes), static_cast<unsigned long long>(lines),
              static_cast<long long>(o.read_kib), o.runs, LoadAverage().c_str());
  std::printf("%-8s %12s %14s %16s %14s %12s  %s\n", "source", "MB/s", "CPU MB/s",
              "CPU per MB (ms)", "ns per line", "file / MB", "target (CPU MB/s)");
  bool failed = false;
  for (const std::string& source : sources) {
    std::vector<double> wall, cpu;
    Figures last;
    for (int r = 0; r < o.runs && !g_interrupted; ++r) {
      last = RunOnce(o, source, all, lines, dir.path());
      if (!last.error.empty()) {
        std::printf("%-8s check failed: %s\n", source.c_str(), last.error.c_str());
        failed = true;
        break;
      }
      wall.push_back(last.wall_s);
      cpu.push_back(last.cpu_s);
    }
    if (wall.empty()) continue;
    const double w = Percentile(wall, 0.5), c = Percentile(cpu, 0.5);
    std::printf("%-8s %12.1f %14.1f %16.3f %14.1f %12.2f  >= %.0f  %s\n", source.c_str(),
                mb / w, mb / c, c * 1e3 / mb, c * 1e9 / static_cast<double>(lines),
                static_cast<double>(last.file_bytes) / 1e6 / mb, kTargetMbPerSec,
                Verdict(mb / c >= kTargetMbPerSec));
  }
  std::printf("\nMB/s: payload over wall time; CPU MB/s: over this process's CPU time "
              "(user + system; the pipe's writer not counted), one core's worth.\n");
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace relsupd::bench

int main(int argc, char** argv) { return relsupd::bench::Main(argc, argv); }
