// Small helpers over Node-API's C interface: argument access, typed unwrapping and
// conversions. No exceptions: every helper reports failure by throwing a JS error and
// returning false/nullptr, and callers return right away.
#pragma once

#include <node_api.h>

#include <cstdint>
#include <string>
#include <vector>

namespace wirelayer {

// Evaluates a napi call; on failure throws (unless an exception is already pending) and
// returns `ret` from the enclosing function.
#define WL_NAPI(env, call, ret)                                     \
  do {                                                              \
    if ((call) != napi_ok) {                                        \
      ::wirelayer::ThrowPendingOr(env, "Node-API call failed: " #call); \
      return ret;                                                   \
    }                                                               \
  } while (0)

inline void ThrowPendingOr(napi_env env, const char* message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "ERR_DTLS_NAPI", message);
}

inline void ThrowError(napi_env env, const char* code, const std::string& message) {
  napi_throw_error(env, code, message.c_str());
}

inline void ThrowTypeError(napi_env env, const std::string& message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message.c_str());
}

// Every wrapped native object starts with a magic word, checked on unwrap, so a method
// called on a foreign object (or one wrapped by another class) throws instead of crashing.
template <typename T>
T* UnwrapChecked(napi_env env, napi_value object, const char* what) {
  void* raw = nullptr;
  if (napi_unwrap(env, object, &raw) != napi_ok || raw == nullptr ||
      static_cast<T*>(raw)->magic != T::kMagic) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    ThrowTypeError(env, std::string("expected a ") + what);
    return nullptr;
  }
  return static_cast<T*>(raw);
}

struct Args {
  napi_value self = nullptr;
  napi_value argv[4] = {nullptr, nullptr, nullptr, nullptr};
  size_t argc = 4;
};

inline bool GetArgs(napi_env env, napi_callback_info info, Args* args) {
  args->argc = 4;
  return napi_get_cb_info(env, info, &args->argc, args->argv, &args->self, nullptr) == napi_ok;
}

inline bool IsNullish(napi_env env, napi_value v) {
  if (v == nullptr) return true;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return true;
  return t == napi_undefined || t == napi_null;
}

inline bool GetString(napi_env env, napi_value v, std::string* out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) {
    ThrowTypeError(env, "expected a string");
    return false;
  }
  out->resize(len);
  size_t written = 0;
  if (napi_get_value_string_utf8(env, v, out->data(), len + 1, &written) != napi_ok) return false;
  out->resize(written);
  return true;
}

// Borrows the bytes of a Buffer / Uint8Array / any ArrayBufferView for the current call.
inline bool GetBytes(napi_env env, napi_value v, const uint8_t** data, size_t* len) {
  void* p = nullptr;
  if (napi_get_buffer_info(env, v, &p, len) != napi_ok) {
    ThrowTypeError(env, "expected a Buffer or Uint8Array");
    return false;
  }
  *data = static_cast<const uint8_t*>(p);
  return true;
}

inline bool GetProperty(napi_env env, napi_value obj, const char* key, napi_value* out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok) return false;
  if (!has) {
    *out = nullptr;
    return true;
  }
  return napi_get_named_property(env, obj, key, out) == napi_ok;
}

// Optional option readers: leave `out` untouched when the property is absent or nullish.
inline bool OptString(napi_env env, napi_value obj, const char* key, std::string* out, bool* present) {
  napi_value v;
  *present = false;
  if (!GetProperty(env, obj, key, &v)) return false;
  if (IsNullish(env, v)) return true;
  *present = true;
  return GetString(env, v, out);
}

inline bool OptBool(napi_env env, napi_value obj, const char* key, bool* out) {
  napi_value v;
  if (!GetProperty(env, obj, key, &v)) return false;
  if (IsNullish(env, v)) return true;
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    ThrowTypeError(env, std::string("option ") + key + " must be a boolean");
    return false;
  }
  return true;
}

inline bool OptInt(napi_env env, napi_value obj, const char* key, int64_t* out) {
  napi_value v;
  if (!GetProperty(env, obj, key, &v)) return false;
  if (IsNullish(env, v)) return true;
  if (napi_get_value_int64(env, v, out) != napi_ok) {
    ThrowTypeError(env, std::string("option ") + key + " must be a number");
    return false;
  }
  return true;
}

inline bool OptStringArray(napi_env env, napi_value obj, const char* key, std::vector<std::string>* out,
                           bool* present) {
  napi_value v;
  *present = false;
  if (!GetProperty(env, obj, key, &v)) return false;
  if (IsNullish(env, v)) return true;
  bool is_array = false;
  napi_is_array(env, v, &is_array);
  if (!is_array) {
    ThrowTypeError(env, std::string("option ") + key + " must be an array of strings");
    return false;
  }
  *present = true;
  uint32_t n = 0;
  napi_get_array_length(env, v, &n);
  out->clear();
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    std::string s;
    if (napi_get_element(env, v, i, &item) != napi_ok || !GetString(env, item, &s)) return false;
    out->push_back(std::move(s));
  }
  return true;
}

inline napi_value MakeString(napi_env env, const std::string& s) {
  napi_value v = nullptr;
  napi_create_string_utf8(env, s.data(), s.size(), &v);
  return v;
}

inline napi_value MakeBuffer(napi_env env, const void* data, size_t len) {
  napi_value v = nullptr;
  void* ignored = nullptr;
  napi_create_buffer_copy(env, len, data, &ignored, &v);
  return v;
}

inline napi_value MakeUint32(napi_env env, uint32_t n) {
  napi_value v = nullptr;
  napi_create_uint32(env, n, &v);
  return v;
}

inline napi_value MakeInt32(napi_env env, int32_t n) {
  napi_value v = nullptr;
  napi_create_int32(env, n, &v);
  return v;
}

inline napi_value MakeBool(napi_env env, bool b) {
  napi_value v = nullptr;
  napi_get_boolean(env, b, &v);
  return v;
}

inline napi_value Null(napi_env env) {
  napi_value v = nullptr;
  napi_get_null(env, &v);
  return v;
}

inline napi_value Undefined(napi_env env) {
  napi_value v = nullptr;
  napi_get_undefined(env, &v);
  return v;
}

inline void SetNamed(napi_env env, napi_value obj, const char* key, napi_value v) {
  napi_set_named_property(env, obj, key, v);
}

}  // namespace wirelayer
