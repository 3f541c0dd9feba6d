#pragma once
// Internal to daemon/reexec's codec (handover_codec.cc,
// handover_codec_supervise.cc): the CBOR items of the handover record as
// nlohmann::json values, read with the field's path in every error. No
// other code includes this. Pure; any thread.

#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/config/process_file.h"
#include "daemon/supervise/snapshot.h"

// The drift guard of the codec files: a struct of the record whose size
// changed has a new field the codec must learn.
#define RELSUPD_CODEC_SIZE(T, n) \
  static_assert(sizeof(T) == (n), #T " changed: add the new field to the handover codec")

namespace relsupd::handover_cbor {

using Json = nlohmann::json;

// A record that cannot be read; caught in DecodeHandover. `what` starts
// with the field's path ("supervisor.apps[0].active.run.uid").
struct DecodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void Fail(const std::string& path, const std::string& what) {
  throw DecodeError(path + ": " + what);
}

// ---- enums as names ------------------------------------------------------

template <typename E>
using Names = std::pair<E, const char*>;

// Not InstanceStateName(): that prints kStoppingUnready as "stopping".
inline constexpr Names<InstanceState> kStates[] = {
    {InstanceState::kStopped, "stopped"},   {InstanceState::kStarting, "starting"},
    {InstanceState::kRunning, "running"},   {InstanceState::kReady, "ready"},
    {InstanceState::kStopping, "stopping"}, {InstanceState::kStoppingUnready, "stopping-unready"},
    {InstanceState::kBackoff, "backoff"},   {InstanceState::kExited, "exited"},
    {InstanceState::kFailed, "failed"}};
static_assert(std::size(kStates) == kInstanceStateCount, "name every InstanceState");
inline constexpr Names<StopCause> kStopCauses[] = {{StopCause::kNone, "none"},
                                            {StopCause::kRequested, "requested"},
                                            {StopCause::kNotReady, "not-ready"}};
inline constexpr Names<RestartPolicy> kRestarts[] = {{RestartPolicy::kAlways, "always"},
                                              {RestartPolicy::kOnFailure, "on-failure"},
                                              {RestartPolicy::kNever, "never"}};
inline constexpr Names<ReadyKind> kReadyKinds[] = {{ReadyKind::kNone, "none"},
                                            {ReadyKind::kNotify, "notify"},
                                            {ReadyKind::kTcp, "tcp"},
                                            {ReadyKind::kHttp, "http"},
                                            {ReadyKind::kExec, "exec"}};
inline constexpr Names<StopMode> kStopModes[] = {{StopMode::kGroup, "group"}, {StopMode::kMain, "main"}};

template <typename E, size_t N>
std::string NameOf(const Names<E> (&names)[N], E value) {
  for (const auto& [e, name] : names)
    if (e == value) return name;
  // A value missing from the table is a bug in this file.
  throw std::logic_error("handover codec: an enum value has no name");
}

// ---- reading, with the field's path in every error -----------------------

// The value at `key`, or nullptr when absent or null (the default then).
inline const Json* Get(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

inline std::string Sub(const std::string& path, const char* key) {
  return path.empty() ? key : path + "." + key;
}

inline std::string At(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

inline int64_t IntValue(const Json& v, const std::string& path, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) Fail(path, "not an integer");
  if (v.is_number_unsigned() &&
      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    Fail(path, "out of range");
  int64_t n = v.get<int64_t>();
  if (n < lo || n > hi) Fail(path, "out of range");
  return n;
}

template <typename T>
void ReadInt(const Json& obj, const char* key, const std::string& path, T* out) {
  const Json* v = Get(obj, key);
  if (v == nullptr) return;
  if constexpr (std::is_same_v<T, uint64_t>) {
    if (!v->is_number_unsigned()) Fail(Sub(path, key), "not an unsigned integer");
    *out = v->get<uint64_t>();
  } else {
    *out = static_cast<T>(IntValue(*v, Sub(path, key), std::numeric_limits<T>::min(),
                                   std::numeric_limits<T>::max()));
  }
}

inline void ReadBool(const Json& obj, const char* key, const std::string& path, bool* out) {
  const Json* v = Get(obj, key);
  if (v == nullptr) return;
  if (!v->is_boolean()) Fail(Sub(path, key), "not a boolean");
  *out = v->get<bool>();
}

inline void ReadDouble(const Json& obj, const char* key, const std::string& path, double* out) {
  const Json* v = Get(obj, key);
  if (v == nullptr) return;
  if (!v->is_number()) Fail(Sub(path, key), "not a number");
  *out = v->get<double>();
}

inline void ReadString(const Json& obj, const char* key, const std::string& path, std::string* out) {
  const Json* v = Get(obj, key);
  if (v == nullptr) return;
  if (!v->is_string()) Fail(Sub(path, key), "not a text string");
  *out = v->get<std::string>();
}

inline void ReadBytes(const Json& obj, const char* key, const std::string& path, size_t max,
               std::string* out) {
  const Json* v = Get(obj, key);
  if (v == nullptr) return;
  if (!v->is_binary()) Fail(Sub(path, key), "not a byte string");
  const auto& bytes = v->get_binary();
  if (bytes.size() > max)
    Fail(Sub(path, key), std::to_string(bytes.size()) + " bytes, over the " +
                             std::to_string(max) + " a partial line can hold");
  out->assign(bytes.begin(), bytes.end());
}

template <typename E, size_t N>
void ReadEnum(const Json& obj, const char* key, const std::string& path,
              const Names<E> (&names)[N], E* out) {
  std::string name;
  if (Get(obj, key) == nullptr) return;
  ReadString(obj, key, path, &name);
  for (const auto& [e, n] : names)
    if (name == n) {
      *out = e;
      return;
    }
  Fail(Sub(path, key), "unknown name '" + name + "'");
}

// The array at `key` (an empty one when absent); calls each(item, path).
template <typename F>
void ReadArray(const Json& obj, const char* key, const std::string& path, F each) {
  const Json* v = Get(obj, key);
  if (v == nullptr) return;
  if (!v->is_array()) Fail(Sub(path, key), "not an array");
  for (size_t i = 0; i < v->size(); ++i) each((*v)[i], At(Sub(path, key), i));
}

// The map at `key`, for each entry: each(key, value, path).
template <typename F>
void ReadMap(const Json& obj, const char* key, const std::string& path, F each) {
  const Json* v = Get(obj, key);
  if (v == nullptr) return;
  if (!v->is_object()) Fail(Sub(path, key), "not a map");
  for (const auto& [k, item] : v->items()) each(k, item, Sub(path, key) + "[" + k + "]");
}

// The map at `key` (nullptr when absent).
inline const Json* ReadObject(const Json& obj, const char* key, const std::string& path) {
  const Json* v = Get(obj, key);
  if (v != nullptr && !v->is_object()) Fail(Sub(path, key), "not a map");
  return v;
}

inline void CheckObject(const Json& v, const std::string& path) {
  if (!v.is_object()) Fail(path, "not a map");
}

inline Json Bytes(const std::string& s) {
  return Json::binary(std::vector<uint8_t>(s.begin(), s.end()));
}

// A map of text to text ("config", "env").
inline void ReadStrings(const Json& j, const char* key, const std::string& path,
                        std::map<std::string, std::string>* out) {
  ReadMap(j, key, path, [&](const std::string& k, const Json& v, const std::string& p) {
    if (!v.is_string()) Fail(p, "not a text string");
    (*out)[k] = v.get<std::string>();
  });
}

// handover_codec_supervise.cc: the supervise part of the record.
Json ToCbor(const SupervisorSnapshot& s);
void FromCbor(const Json& j, const std::string& path, SupervisorSnapshot* s);

}  // namespace relsupd::handover_cbor
