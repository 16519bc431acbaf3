// The Node-API binding: three classes (NativeContext, NativeSession, NativeCertificate)
// over the engine in context.cc / session.cc. TypeScript types live in
// src/transport/udp/dtls-engine.ts; this file only converts values.
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "certificate.h"
#include "context.h"
#include "napi_util.h"
#include "packet_queue.h"
#include "session.h"

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "wirelayer's DTLS engine needs the OpenSSL 3 headers that Node ships (include/node/openssl)"
#endif

namespace wirelayer {
namespace {

struct ContextHandle {
  static constexpr uint32_t kMagic = 0x574c4358;  // "WLCX"
  uint32_t magic = kMagic;
  std::shared_ptr<Context> context;
};

struct SessionHandle {
  static constexpr uint32_t kMagic = 0x574c5353;  // "WLSS"
  // Roughly what an SSL with DTLS read/write buffers and handshake state holds, reported
  // to V8 so that sessions left to the GC are collected before native memory piles up.
  static constexpr int64_t kExternalBytes = 96 * 1024;
  uint32_t magic = kMagic;
  bool accounted = false;
  std::unique_ptr<Session> session;

  void Release(napi_env env) {
    if (session != nullptr) session->Destroy();
    if (accounted) {
      int64_t ignored = 0;
      napi_adjust_external_memory(env, -kExternalBytes, &ignored);
      accounted = false;
    }
  }
};

struct CertificateHandle {
  static constexpr uint32_t kMagic = 0x574c4354;  // "WLCT"
  uint32_t magic = kMagic;
  std::shared_ptr<CertificateKey> cert;
};

template <typename T>
void Finalize(napi_env /*env*/, void* data, void* /*hint*/) {
  T* handle = static_cast<T*>(data);
  handle->magic = 0;
  delete handle;
}

void FinalizeSession(napi_env env, void* data, void* /*hint*/) {
  auto* handle = static_cast<SessionHandle*>(data);
  handle->Release(env);
  handle->magic = 0;
  delete handle;
}

bool CheckConstructCall(napi_env env, napi_callback_info info) {
  napi_value target = nullptr;
  if (napi_get_new_target(env, info, &target) != napi_ok || target == nullptr) {
    napi_throw_type_error(env, "ERR_CONSTRUCT_CALL_REQUIRED", "use new");
    return false;
  }
  return true;
}

bool ParseVersion(napi_env env, napi_value options, const char* key, int* out) {
  std::string s;
  bool present = false;
  if (!OptString(env, options, key, &s, &present)) return false;
  if (!present) return true;
  if (s == "DTLSv1") {
    *out = DTLS1_VERSION;
  } else if (s == "DTLSv1.2") {
    *out = DTLS1_2_VERSION;
  } else {
    napi_throw_range_error(env, "ERR_DTLS_VERSION",
                           (std::string(key) + " must be 'DTLSv1' or 'DTLSv1.2', not '" + s + "'").c_str());
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// NativeContext

napi_value ContextNew(napi_env env, napi_callback_info info) {
  if (!CheckConstructCall(env, info)) return nullptr;
  Args a;
  WL_NAPI(env, GetArgs(env, info, &a) ? napi_ok : napi_generic_failure, nullptr);
  napi_value o = a.argv[0];
  napi_valuetype type = napi_undefined;
  if (o == nullptr || napi_typeof(env, o, &type) != napi_ok || type != napi_object) {
    ThrowTypeError(env, "options must be an object");
    return nullptr;
  }
  ContextConfig c;
  std::string role;
  bool present = false;
  if (!OptString(env, o, "role", &role, &present)) return nullptr;
  if (role != "client" && role != "server") {
    ThrowTypeError(env, "role must be 'client' or 'server'");
    return nullptr;
  }
  c.is_server = role == "server";
  c.verify_peer = !c.is_server;
  int64_t n = 0;
  if (!OptString(env, o, "cert", &c.cert_pem, &present) || !OptString(env, o, "key", &c.key_pem, &present) ||
      !OptString(env, o, "ca", &c.ca_pem, &present) || !OptBool(env, o, "verify", &c.verify_peer) ||
      !OptBool(env, o, "requestCert", &c.request_cert) || !ParseVersion(env, o, "minVersion", &c.min_version) ||
      !ParseVersion(env, o, "maxVersion", &c.max_version) || !OptString(env, o, "ciphers", &c.ciphers, &present) ||
      !OptStringArray(env, o, "alpn", &c.alpn, &present) || !OptBool(env, o, "cookieExchange", &c.cookie_exchange) ||
      !OptBool(env, o, "pauseOnClientHello", &c.pause_on_client_hello) || !OptBool(env, o, "keylog", &c.keylog)) {
    return nullptr;
  }
  n = c.mtu;
  if (!OptInt(env, o, "mtu", &n)) return nullptr;
  c.mtu = static_cast<long>(n);
  n = c.mtu_overhead;
  if (!OptInt(env, o, "mtuOverhead", &n)) return nullptr;
  if (n < 0 || n > 128) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "mtuOverhead must be 0 to 128");
    return nullptr;
  }
  c.mtu_overhead = static_cast<long>(n);
  n = c.initial_retransmit_ms;
  if (!OptInt(env, o, "initialRetransmitMs", &n)) return nullptr;
  if (n < 1 || n > 60000) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "initialRetransmitMs must be 1 to 60000");
    return nullptr;
  }
  c.initial_retransmit_ms = static_cast<uint32_t>(n);
  n = c.max_retransmit_ms;
  if (!OptInt(env, o, "maxRetransmitMs", &n)) return nullptr;
  if (n < 1 || n > 600000) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "maxRetransmitMs must be 1 to 600000");
    return nullptr;
  }
  c.max_retransmit_ms = static_cast<uint32_t>(n);
  if (c.mtu < 228 || c.mtu > 65507) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "mtu must be 228 to 65507");
    return nullptr;
  }

  std::string error;
  std::shared_ptr<Context> context = Context::Create(c, &error);
  if (context == nullptr) {
    ThrowError(env, "ERR_DTLS_CONTEXT", error);
    return nullptr;
  }
  auto* handle = new ContextHandle();
  handle->context = std::move(context);
  if (napi_wrap(env, a.self, handle, Finalize<ContextHandle>, nullptr, nullptr) != napi_ok) {
    delete handle;
    ThrowPendingOr(env, "napi_wrap failed");
    return nullptr;
  }
  return a.self;
}

ContextHandle* ThisContext(napi_env env, napi_callback_info info, Args* a) {
  if (!GetArgs(env, info, a)) return nullptr;
  ContextHandle* h = UnwrapChecked<ContextHandle>(env, a->self, "NativeContext");
  if (h != nullptr && h->context == nullptr) {
    ThrowError(env, "ERR_DTLS_DESTROYED", "the DTLS context is destroyed");
    return nullptr;
  }
  return h;
}

// cookieCheck(datagram, peer): true (valid cookie) | Buffer (HelloVerifyRequest) | null (drop)
napi_value ContextCookieCheck(napi_env env, napi_callback_info info) {
  Args a;
  ContextHandle* h = ThisContext(env, info, &a);
  if (h == nullptr) return nullptr;
  const uint8_t* data = nullptr;
  size_t len = 0;
  std::string peer;
  if (!GetBytes(env, a.argv[0], &data, &len) || !GetString(env, a.argv[1], &peer)) return nullptr;
  std::vector<uint8_t> reply;
  int r = h->context->StatelessCookieCheck(data, len, peer, &reply);
  if (r == 1) return MakeBool(env, true);
  if (r == 0) return MakeBuffer(env, reply.data(), reply.size());
  return Null(env);
}

napi_value ContextRotateCookieSecret(napi_env env, napi_callback_info info) {
  Args a;
  ContextHandle* h = ThisContext(env, info, &a);
  if (h == nullptr) return nullptr;
  h->context->RotateCookieSecret();
  return Undefined(env);
}

napi_value ContextDestroy(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, &a)) return nullptr;
  ContextHandle* h = UnwrapChecked<ContextHandle>(env, a.self, "NativeContext");
  if (h == nullptr) return nullptr;
  h->context.reset();  // sessions keep their own reference until they are gone
  return Undefined(env);
}

// ---------------------------------------------------------------------------------------
// NativeCertificate

napi_value CertificateNew(napi_env env, napi_callback_info info) {
  if (!CheckConstructCall(env, info)) return nullptr;
  Args a;
  if (!GetArgs(env, info, &a)) return nullptr;
  std::string cert_pem, key_pem, error;
  if (!GetString(env, a.argv[0], &cert_pem) || !GetString(env, a.argv[1], &key_pem)) return nullptr;
  auto cert = CertificateKey::FromPem(cert_pem, key_pem, &error);
  if (cert == nullptr) {
    ThrowError(env, "ERR_DTLS_CERTIFICATE", error);
    return nullptr;
  }
  auto* handle = new CertificateHandle();
  handle->cert = std::move(cert);
  if (napi_wrap(env, a.self, handle, Finalize<CertificateHandle>, nullptr, nullptr) != napi_ok) {
    delete handle;
    ThrowPendingOr(env, "napi_wrap failed");
    return nullptr;
  }
  return a.self;
}

napi_value CertificateDestroy(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, &a)) return nullptr;
  CertificateHandle* h = UnwrapChecked<CertificateHandle>(env, a.self, "NativeCertificate");
  if (h == nullptr) return nullptr;
  h->cert.reset();
  return Undefined(env);
}

// ---------------------------------------------------------------------------------------
// NativeSession

napi_value SessionNew(napi_env env, napi_callback_info info) {
  if (!CheckConstructCall(env, info)) return nullptr;
  Args a;
  if (!GetArgs(env, info, &a)) return nullptr;
  ContextHandle* ch = UnwrapChecked<ContextHandle>(env, a.argv[0], "NativeContext");
  if (ch == nullptr) return nullptr;
  if (ch->context == nullptr) {
    ThrowError(env, "ERR_DTLS_DESTROYED", "the DTLS context is destroyed");
    return nullptr;
  }
  SessionConfig c;
  napi_value o = a.argv[1];
  if (!IsNullish(env, o)) {
    bool present = false;
    int64_t n = 0;
    bool pause = false;
    if (!OptString(env, o, "servername", &c.servername, &c.has_servername) ||
        !OptStringArray(env, o, "alpn", &c.alpn, &c.has_alpn) ||
        !OptString(env, o, "checkHost", &c.check_host, &c.has_check_host) ||
        !OptString(env, o, "peer", &c.peer, &present) || !OptInt(env, o, "mtu", &n)) {
      return nullptr;
    }
    if (n < 0 || n > 65507) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "mtu must be 228 to 65507");
      return nullptr;
    }
    c.mtu = static_cast<long>(n);
    napi_value v = nullptr;
    if (!GetProperty(env, o, "pauseOnClientHello", &v)) return nullptr;
    if (!IsNullish(env, v)) {
      if (!OptBool(env, o, "pauseOnClientHello", &pause)) return nullptr;
      c.pause_on_client_hello = pause ? 1 : 0;
    }
    n = 0;
    if (!OptInt(env, o, "initialRetransmitMs", &n)) return nullptr;
    if (n < 0 || n > 60000) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "initialRetransmitMs must be 1 to 60000");
      return nullptr;
    }
    c.initial_retransmit_ms = static_cast<uint32_t>(n);
    n = 0;
    if (!OptInt(env, o, "maxRetransmitMs", &n)) return nullptr;
    if (n < 0 || n > 600000) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "maxRetransmitMs must be 1 to 600000");
      return nullptr;
    }
    c.max_retransmit_ms = static_cast<uint32_t>(n);
  }
  std::string error;
  std::unique_ptr<Session> session = Session::Create(ch->context, c, &error);
  if (session == nullptr) {
    ThrowError(env, "ERR_DTLS_SESSION", error);
    return nullptr;
  }
  auto* handle = new SessionHandle();
  handle->session = std::move(session);
  if (napi_wrap(env, a.self, handle, FinalizeSession, nullptr, nullptr) != napi_ok) {
    delete handle;
    ThrowPendingOr(env, "napi_wrap failed");
    return nullptr;
  }
  int64_t ignored = 0;
  handle->accounted = napi_adjust_external_memory(env, SessionHandle::kExternalBytes, &ignored) == napi_ok;
  return a.self;
}

// The session behind `this`; throws if destroyed (except where `allow_destroyed`).
Session* ThisSession(napi_env env, napi_callback_info info, Args* a, bool allow_destroyed = false) {
  if (!GetArgs(env, info, a)) return nullptr;
  SessionHandle* h = UnwrapChecked<SessionHandle>(env, a->self, "NativeSession");
  if (h == nullptr) return nullptr;
  if (h->session == nullptr || (!allow_destroyed && h->session->destroyed())) {
    ThrowError(env, "ERR_DTLS_DESTROYED", "the DTLS session is destroyed");
    return nullptr;
  }
  return h->session.get();
}

napi_value SessionStart(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a);
  return s == nullptr ? nullptr : MakeUint32(env, s->Start());
}

napi_value SessionReceive(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a);
  if (s == nullptr) return nullptr;
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!GetBytes(env, a.argv[0], &data, &len)) return nullptr;
  return MakeUint32(env, s->Receive(data, len));
}

// Hands the oldest packets of `queue` to JavaScript in one Buffer, back to back; `meta`
// (a Uint32Array) receives the count, then each length. One allocation per batch.
napi_value TakePacked(napi_env env, PacketQueue& queue, napi_value meta_value) {
  if (queue.empty()) return Null(env);
  napi_typedarray_type type;
  size_t meta_len = 0;
  void* meta_data = nullptr;
  if (napi_get_typedarray_info(env, meta_value, &type, &meta_len, &meta_data, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array || meta_len < 2) {
    ThrowTypeError(env, "expected a Uint32Array of at least 2 elements");
    return nullptr;
  }
  auto* meta = static_cast<uint32_t*>(meta_data);
  size_t k = queue.count() < meta_len - 1 ? queue.count() : meta_len - 1;
  size_t total = 0;
  for (size_t i = 0; i < k; i++) {
    meta[1 + i] = static_cast<uint32_t>(queue.Size(i));
    total += queue.Size(i);
  }
  meta[0] = static_cast<uint32_t>(k);
  napi_value buffer = nullptr;
  void* dst = nullptr;
  WL_NAPI(env, napi_create_buffer(env, total, &dst, &buffer), nullptr);
  if (total > 0) std::memcpy(dst, queue.Front(), total);
  queue.Pop(k, total);
  return buffer;
}

// takeOutgoing(meta): Buffer (the datagrams back to back) | null
napi_value SessionTakeOutgoing(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);  // destroyed: the queue is empty, null
  if (s == nullptr) return nullptr;
  return TakePacked(env, s->queue().out, a.argv[0]);
}

napi_value SessionTimeout(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  if (s == nullptr) return nullptr;
  napi_value v = nullptr;
  napi_create_int64(env, s->TimeoutMs(), &v);
  return v;
}

napi_value SessionOnTimeout(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  return s == nullptr ? nullptr : MakeUint32(env, s->OnTimeout());
}

napi_value SessionWrite(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a);
  if (s == nullptr) return nullptr;
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!GetBytes(env, a.argv[0], &data, &len)) return nullptr;
  std::string error;
  if (!s->Write(data, len, &error)) {
    ThrowError(env, "ERR_DTLS_WRITE", error);
    return nullptr;
  }
  return MakeUint32(env, s->Flags());
}

napi_value SessionRead(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  if (s == nullptr) return nullptr;
  PacketQueue& records = s->records();
  if (records.empty()) return Null(env);
  size_t len = records.Size(0);
  napi_value v = MakeBuffer(env, records.Front(), len);
  records.Pop(1, len);
  return v;
}

// readAll(meta): Buffer (the records back to back) | null
napi_value SessionReadAll(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  if (s == nullptr) return nullptr;
  return TakePacked(env, s->records(), a.argv[0]);
}

napi_value SessionClose(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  return s == nullptr ? nullptr : MakeUint32(env, s->Close());
}

napi_value SessionResume(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a);
  return s == nullptr ? nullptr : MakeUint32(env, s->Resume());
}

napi_value SessionFlags(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  return s == nullptr ? nullptr : MakeUint32(env, s->Flags());
}

napi_value SessionSetCertificate(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a);
  if (s == nullptr) return nullptr;
  CertificateHandle* ch = UnwrapChecked<CertificateHandle>(env, a.argv[0], "NativeCertificate");
  if (ch == nullptr) return nullptr;
  if (ch->cert == nullptr) {
    ThrowError(env, "ERR_DTLS_DESTROYED", "the certificate is destroyed");
    return nullptr;
  }
  std::string error;
  if (!s->SetCertificate(*ch->cert, &error)) {
    ThrowError(env, "ERR_DTLS_CERTIFICATE", error);
    return nullptr;
  }
  return Undefined(env);
}

napi_value SessionSetAlpn(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a);
  if (s == nullptr) return nullptr;
  napi_value wrapper = nullptr;
  napi_create_object(env, &wrapper);
  napi_set_named_property(env, wrapper, "alpn", a.argv[0]);
  std::vector<std::string> names;
  bool present = false;
  if (!OptStringArray(env, wrapper, "alpn", &names, &present)) return nullptr;
  std::string error;
  if (!s->SetAlpn(names, &error)) {
    ThrowError(env, "ERR_DTLS_ALPN", error);
    return nullptr;
  }
  return Undefined(env);
}

napi_value SessionSetMtu(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a);
  if (s == nullptr) return nullptr;
  int64_t mtu = 0;
  if (napi_get_value_int64(env, a.argv[0], &mtu) != napi_ok) {
    ThrowTypeError(env, "mtu must be a number");
    return nullptr;
  }
  std::string error;
  if (!s->SetMtu(static_cast<long>(mtu), &error)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", error.c_str());
    return nullptr;
  }
  return Undefined(env);
}

napi_value SessionMaxPayload(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  return s == nullptr ? nullptr : MakeInt32(env, static_cast<int32_t>(s->MaxPayload()));
}

// info(): { version, cipher, alpn, sni, verifyError } (nulls before the handshake)
napi_value SessionInfo(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  if (s == nullptr) return nullptr;
  napi_value o = nullptr;
  napi_create_object(env, &o);
  const char* version = s->Version();
  const char* cipher = s->CipherName();
  std::string alpn;
  bool has_alpn = s->Alpn(&alpn);
  const std::string* sni = s->Sni();
  std::string verify = s->destroyed() ? "" : s->VerifyError();
  SetNamed(env, o, "version", version != nullptr ? MakeString(env, version) : Null(env));
  SetNamed(env, o, "cipher", cipher != nullptr ? MakeString(env, cipher) : Null(env));
  SetNamed(env, o, "alpn", has_alpn ? MakeString(env, alpn) : Null(env));
  SetNamed(env, o, "sni", sni != nullptr ? MakeString(env, *sni) : Null(env));
  SetNamed(env, o, "verifyError", verify.empty() ? Null(env) : MakeString(env, verify));
  SetNamed(env, o, "alertSent", s->alert_sent().empty() ? Null(env) : MakeString(env, s->alert_sent()));
  SetNamed(env, o, "alertReceived", s->alert_received().empty() ? Null(env) : MakeString(env, s->alert_received()));
  SetNamed(env, o, "outDropped", MakeUint32(env, static_cast<uint32_t>(s->queue().out_dropped)));
  SetNamed(env, o, "inDropped", MakeUint32(env, static_cast<uint32_t>(s->queue().in_dropped)));
  SetNamed(env, o, "recordsDropped", MakeUint32(env, static_cast<uint32_t>(s->records_dropped())));
  SetNamed(env, o, "invalidDropped", MakeUint32(env, static_cast<uint32_t>(s->garbage_dropped())));
  return o;
}

napi_value DerArray(napi_env env, const std::vector<std::vector<uint8_t>>& certs) {
  napi_value array = nullptr;
  napi_create_array_with_length(env, certs.size(), &array);
  for (size_t i = 0; i < certs.size(); i++) {
    napi_set_element(env, array, static_cast<uint32_t>(i), MakeBuffer(env, certs[i].data(), certs[i].size()));
  }
  return array;
}

napi_value SessionPeerCertificates(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  return s == nullptr ? nullptr : DerArray(env, s->PeerCertificates());
}

napi_value SessionLocalCertificate(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  if (s == nullptr) return nullptr;
  std::vector<uint8_t> der = s->LocalCertificate();
  return der.empty() ? Null(env) : MakeBuffer(env, der.data(), der.size());
}

// clientHello(): { sni, alpnOffers, cipherSuites, legacyVersion } | null
napi_value SessionClientHello(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  if (s == nullptr) return nullptr;
  const ClientHelloInfo& h = s->client_hello();
  if (!h.captured) return Null(env);
  napi_value o = nullptr, alpn = nullptr, ciphers = nullptr;
  napi_create_object(env, &o);
  napi_create_array_with_length(env, h.alpn.size(), &alpn);
  for (size_t i = 0; i < h.alpn.size(); i++) napi_set_element(env, alpn, static_cast<uint32_t>(i), MakeString(env, h.alpn[i]));
  napi_create_array_with_length(env, h.cipher_suites.size(), &ciphers);
  for (size_t i = 0; i < h.cipher_suites.size(); i++) {
    napi_set_element(env, ciphers, static_cast<uint32_t>(i), MakeUint32(env, h.cipher_suites[i]));
  }
  SetNamed(env, o, "sni", h.sni.empty() ? Null(env) : MakeString(env, h.sni));
  SetNamed(env, o, "alpnOffers", alpn);
  SetNamed(env, o, "cipherSuites", ciphers);
  SetNamed(env, o, "legacyVersion", MakeUint32(env, h.legacy_version));
  return o;
}

// failure(): { message, sslError, errors[], verifyError } | null
napi_value SessionFailure(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  if (s == nullptr) return nullptr;
  const Failure* f = s->failure();
  if (f == nullptr) return Null(env);
  napi_value o = nullptr, errors = nullptr;
  napi_create_object(env, &o);
  napi_create_array_with_length(env, f->errors.size(), &errors);
  for (size_t i = 0; i < f->errors.size(); i++) napi_set_element(env, errors, static_cast<uint32_t>(i), MakeString(env, f->errors[i]));
  SetNamed(env, o, "message", MakeString(env, f->message));
  SetNamed(env, o, "sslError", MakeString(env, f->ssl_error));
  SetNamed(env, o, "errors", errors);
  SetNamed(env, o, "verifyError", f->verify_error.empty() ? Null(env) : MakeString(env, f->verify_error));
  return o;
}

napi_value SessionTakeKeylog(napi_env env, napi_callback_info info) {
  Args a;
  Session* s = ThisSession(env, info, &a, true);
  if (s == nullptr) return nullptr;
  auto& lines = s->keylog();
  if (lines.empty()) return Null(env);
  napi_value array = nullptr;
  napi_create_array_with_length(env, lines.size(), &array);
  for (size_t i = 0; i < lines.size(); i++) napi_set_element(env, array, static_cast<uint32_t>(i), MakeString(env, lines[i]));
  lines.clear();
  return array;
}

napi_value SessionDestroy(napi_env env, napi_callback_info info) {
  Args a;
  if (!GetArgs(env, info, &a)) return nullptr;
  SessionHandle* h = UnwrapChecked<SessionHandle>(env, a.self, "NativeSession");
  if (h == nullptr) return nullptr;
  h->Release(env);
  return Undefined(env);
}

// ---------------------------------------------------------------------------------------

#define WL_METHOD(name, fn) \
  { name, nullptr, fn, nullptr, nullptr, nullptr, napi_default_method, nullptr }

bool DefineClass(napi_env env, napi_value exports, const char* name, napi_callback ctor,
                 const std::vector<napi_property_descriptor>& methods) {
  napi_value cls = nullptr;
  if (napi_define_class(env, name, NAPI_AUTO_LENGTH, ctor, nullptr, methods.size(), methods.data(), &cls) !=
      napi_ok) {
    return false;
  }
  return napi_set_named_property(env, exports, name, cls) == napi_ok;
}

napi_value Init(napi_env env, napi_value exports) {
  const std::vector<napi_property_descriptor> context_methods = {
      WL_METHOD("cookieCheck", ContextCookieCheck),
      WL_METHOD("rotateCookieSecret", ContextRotateCookieSecret),
      WL_METHOD("destroy", ContextDestroy),
  };
  const std::vector<napi_property_descriptor> certificate_methods = {
      WL_METHOD("destroy", CertificateDestroy),
  };
  const std::vector<napi_property_descriptor> session_methods = {
      WL_METHOD("start", SessionStart),
      WL_METHOD("receive", SessionReceive),
      WL_METHOD("takeOutgoing", SessionTakeOutgoing),
      WL_METHOD("timeout", SessionTimeout),
      WL_METHOD("onTimeout", SessionOnTimeout),
      WL_METHOD("write", SessionWrite),
      WL_METHOD("read", SessionRead),
      WL_METHOD("readAll", SessionReadAll),
      WL_METHOD("close", SessionClose),
      WL_METHOD("resume", SessionResume),
      WL_METHOD("flags", SessionFlags),
      WL_METHOD("setCertificate", SessionSetCertificate),
      WL_METHOD("setAlpn", SessionSetAlpn),
      WL_METHOD("setMtu", SessionSetMtu),
      WL_METHOD("maxPayload", SessionMaxPayload),
      WL_METHOD("info", SessionInfo),
      WL_METHOD("peerCertificates", SessionPeerCertificates),
      WL_METHOD("localCertificate", SessionLocalCertificate),
      WL_METHOD("clientHello", SessionClientHello),
      WL_METHOD("failure", SessionFailure),
      WL_METHOD("takeKeylog", SessionTakeKeylog),
      WL_METHOD("destroy", SessionDestroy),
  };
  if (!DefineClass(env, exports, "NativeContext", ContextNew, context_methods) ||
      !DefineClass(env, exports, "NativeCertificate", CertificateNew, certificate_methods) ||
      !DefineClass(env, exports, "NativeSession", SessionNew, session_methods)) {
    ThrowPendingOr(env, "cannot define the DTLS classes");
    return nullptr;
  }
  SetNamed(env, exports, "opensslVersion", MakeString(env, OpenSSL_version(OPENSSL_VERSION)));
  SetNamed(env, exports, "opensslHeaders", MakeString(env, OPENSSL_VERSION_TEXT));
  return exports;
}

}  // namespace
}  // namespace wirelayer

NAPI_MODULE_INIT() { return wirelayer::Init(env, exports); }
