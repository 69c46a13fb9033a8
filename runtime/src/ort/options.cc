#include "ort/options.h"

#include <cstdint>
#include <cstdlib>

namespace udc {
namespace ort {
namespace {

// A decimal integer of 1-20 digits that fits uint64 ("0" included; no sign, no spaces).
bool ParseU64(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

// The value of `key` in the session config, else of environment variable `env` (unset or
// empty: not given). *where names the source for messages.
bool Lookup(const OrtSessionOptions* session_options, const char* key, const char* env, std::string* value,
            std::string* where) {
  if (session_options != nullptr) {
    Ort::ConstSessionOptions so(session_options);
    if (so.HasConfigEntry(key)) {
      *value = so.GetConfigEntry(key);
      *where = std::string("session config entry ") + key;
      return true;
    }
  }
  const char* e = std::getenv(env);
  if (e != nullptr && *e != '\0') {
    *value = e;
    *where = std::string("environment variable ") + env;
    return true;
  }
  return false;
}

bool ReadU64(const OrtSessionOptions* session_options, const char* key, const char* env, uint64_t* out,
             std::string* error) {
  std::string value, where;
  if (!Lookup(session_options, key, env, &value, &where)) return true;  // keep the default
  if (!ParseU64(value, out)) {
    *error = where + " is '" + value.substr(0, 64) + "', not a decimal integer";
    return false;
  }
  return true;
}

}  // namespace

bool ReadOpOptions(const OrtSessionOptions* session_options, DecodeOptions* out, std::string* error) {
  *out = DecodeOptions();
  uint64_t threads = 0;
  if (!ReadU64(session_options, kThreadsKey, kThreadsEnv, &threads, error)) return false;
  out->max_threads = threads > static_cast<uint64_t>(kMaxDecodeThreads) ? kMaxDecodeThreads : static_cast<int>(threads);
  return ReadU64(session_options, kMaxOutputBytesKey, kMaxOutputBytesEnv, &out->max_output_bytes, error);
}

}  // namespace ort
}  // namespace udc
