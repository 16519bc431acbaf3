#include "session.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/obj_mac.h>

#include <cstring>

#include "errors.h"

namespace wirelayer {

namespace {

constexpr size_t kMaxRecords = 4096;
constexpr size_t kMaxRecordBytes = 8 * 1024 * 1024;
constexpr size_t kMaxPlaintext = 16384;                 // SSL3_RT_MAX_PLAIN_LENGTH

unsigned int TimerCallback(SSL* ssl, unsigned int previous_us) {
  Session* session = SessionOf(ssl);
  if (session == nullptr) return previous_us == 0 ? 1000000 : previous_us * 2;
  return session->NextTimerUs(previous_us);
}

// Reads a 2-byte length-prefixed vector from [p, end); false if it does not fit.
bool ReadVector16(const unsigned char*& p, const unsigned char* end, const unsigned char** body, size_t* len) {
  if (end - p < 2) return false;
  size_t n = (static_cast<size_t>(p[0]) << 8) | p[1];
  p += 2;
  if (static_cast<size_t>(end - p) < n) return false;
  *body = p;
  *len = n;
  p += n;
  return true;
}

}  // namespace

Session* SessionOf(const SSL* ssl) {
  if (ssl == nullptr) return nullptr;
  return static_cast<Session*>(SSL_get_app_data(ssl));
}

std::unique_ptr<Session> Session::Create(std::shared_ptr<Context> context, const SessionConfig& config,
                                         std::string* error) {
  ClearErrors();
  std::unique_ptr<Session> s(new Session());
  const ContextConfig& cc = context->config();
  s->context_ = context;
  s->is_server_ = cc.is_server;
  s->ssl_ = SSL_new(context->ssl_ctx());
  if (s->ssl_ == nullptr) {
    *error = DrainErrorsAsMessage("SSL_new failed");
    return nullptr;
  }
  SSL_set_app_data(s->ssl_, s.get());
  s->queue_.mtu_overhead = cc.mtu_overhead;
  s->queue_.peer = config.peer;
  BIO* bio = NewDatagramBio(&s->queue_);
  if (bio == nullptr) {
    *error = DrainErrorsAsMessage("cannot create the datagram BIO");
    return nullptr;
  }
  SSL_set_bio(s->ssl_, bio, bio);  // one reference, owned by the SSL

  uint32_t initial_ms = config.initial_retransmit_ms != 0 ? config.initial_retransmit_ms : cc.initial_retransmit_ms;
  s->initial_timer_us_ = initial_ms * 1000u;
  uint32_t max_ms = config.max_retransmit_ms != 0 ? config.max_retransmit_ms : cc.max_retransmit_ms;
  s->max_timer_us_ = (max_ms < initial_ms ? initial_ms : max_ms) * 1000u;
  DTLS_set_timer_cb(s->ssl_, TimerCallback);

  if (!s->SetMtu(config.mtu != 0 ? config.mtu : cc.mtu, error)) return nullptr;

  s->pause_on_hello_ =
      config.pause_on_client_hello < 0 ? cc.pause_on_client_hello : config.pause_on_client_hello != 0;

  if (s->is_server_) {
    SSL_set_accept_state(s->ssl_);
    s->listening_ = cc.cookie_exchange;
  } else {
    SSL_set_connect_state(s->ssl_);
    if (config.has_servername && !config.servername.empty()) {
      if (SSL_set_tlsext_host_name(s->ssl_, config.servername.c_str()) != 1) {
        *error = DrainErrorsAsMessage("invalid servername '" + config.servername + "'");
        return nullptr;
      }
      s->has_servername_ = true;
      s->servername_ = config.servername;
    }
    if (config.has_alpn) {
      std::vector<uint8_t> wire;
      if (!EncodeAlpn(config.alpn, &wire, error)) return nullptr;
      if (SSL_set_alpn_protos(s->ssl_, wire.empty() ? nullptr : wire.data(), static_cast<unsigned int>(wire.size())) != 0) {
        *error = DrainErrorsAsMessage("cannot set the ALPN protocols");
        return nullptr;
      }
    }
    if (config.has_check_host && !config.check_host.empty()) {
      X509_VERIFY_PARAM* param = SSL_get0_param(s->ssl_);
      if (X509_VERIFY_PARAM_set1_ip_asc(param, config.check_host.c_str()) != 1) {
        ClearErrors();
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(s->ssl_, config.check_host.c_str()) != 1) {
          *error = DrainErrorsAsMessage("invalid host name to check '" + config.check_host + "'");
          return nullptr;
        }
      }
    }
  }
  ClearErrors();
  return s;
}

Session::~Session() { Destroy(); }

void Session::Destroy() {
  if (ssl_ != nullptr) {
    SSL_set_app_data(ssl_, nullptr);
    SSL_free(ssl_);  // frees the BIO too
    ssl_ = nullptr;
  }
  BIO_ADDR_free(listen_addr_);
  listen_addr_ = nullptr;
  queue_.ClearInput();
  queue_.ClearOut();
  records_.Clear();
  keylog_.clear();
  context_.reset();
  closed_ = true;
}

uint32_t Session::Flags() {
  if (ssl_ == nullptr) return static_cast<uint32_t>(kClosed) | (failed_ ? static_cast<uint32_t>(kFailed) : 0u);
  uint32_t f = 0;
  if (!queue_.out.empty()) f |= kOutgoing;
  if (!records_.empty()) f |= kData;
  if (established_) f |= kEstablished;
  if (hello_pending_) f |= kClientHello;
  if (queue_.timer_changed) {
    f |= kTimer;
    queue_.timer_changed = false;
  }
  if (peer_closed_) f |= kPeerClosed;
  if (failed_) f |= kFailed;
  if (!keylog_.empty()) f |= kKeylog;
  if (closed_) f |= kClosed;
  if (listening_) f |= kListening;
  return f;
}

uint32_t Session::Start() {
  if (ssl_ == nullptr) return Flags();
  ClearErrors();
  started_ = true;
  if (!is_server_) Advance();
  return Flags();
}

// OpenSSL 3 fails the whole association (internal_error alert) on a protected AEAD record
// shorter than its explicit nonce + tag, instead of discarding it as RFC 6347 4.1.2.7 says
// (openssl/openssl#24972, #25389). One spoofed datagram would kill an established session,
// so such datagrams never reach OpenSSL. No legitimate peer sends them.
size_t Session::MinProtectedRecord() const {
  const SSL_CIPHER* cipher = SSL_get_pending_cipher(ssl_);
  if (cipher == nullptr) cipher = SSL_get_current_cipher(ssl_);
  if (cipher == nullptr) return 24;  // nothing protected can be legitimate yet; 24 is the largest AEAD minimum
  if (!SSL_CIPHER_is_aead(cipher)) return 0;  // CBC / NULL with MAC-then-encrypt: OpenSSL discards bad records
  if (SSL_CIPHER_get_cipher_nid(cipher) == NID_chacha20_poly1305) return 16;  // no explicit nonce, 16-byte tag
  const char* name = SSL_CIPHER_standard_name(cipher);
  if (name != nullptr && std::strstr(name, "_CCM_8") != nullptr) return 16;  // 8-byte nonce, 8-byte tag
  return 24;  // GCM, CCM: 8-byte explicit nonce, 16-byte tag
}

bool Session::AcceptableDatagram(const uint8_t* data, size_t len) const {
  size_t min = MinProtectedRecord();
  if (min == 0) return true;
  // DTLS record header: type(1) version(2) epoch(2) sequence(6) length(2).
  for (size_t off = 0; off + 13 <= len;) {
    unsigned epoch = (static_cast<unsigned>(data[off + 3]) << 8) | data[off + 4];
    size_t record_len = (static_cast<size_t>(data[off + 11]) << 8) | data[off + 12];
    if (epoch != 0 && record_len > 0 && record_len < min) return false;
    off += 13 + record_len;
  }
  return true;
}

uint32_t Session::Receive(const uint8_t* data, size_t len) {
  if (ssl_ == nullptr || failed_ || len == 0) return Flags();
  if (!listening_ && !AcceptableDatagram(data, len)) {
    garbage_dropped_++;
    return Flags();
  }
  ClearErrors();
  started_ = true;
  queue_.Borrow(data, len);
  Advance();
  if (ssl_ != nullptr && !failed_) {
    queue_.EndBorrow();
  } else {
    queue_.ClearInput();
  }
  return Flags();
}

uint32_t Session::Advance() {
  if (listening_) {
    if (listen_addr_ == nullptr) listen_addr_ = BIO_ADDR_new();
    for (int rounds = 0; queue_.HasInput() && rounds < 256; rounds++) {
      // DTLSv1_listen reads every queued datagram; on success the ClientHello is buffered
      // in this SSL and the handshake goes on from it.
      int r = DTLSv1_listen(ssl_, listen_addr_);
      if (r == 1) {
        listening_ = false;
        SSL_set_mtu(ssl_, mtu_);  // SSL_clear inside listen keeps it, but be explicit
        break;
      }
      if (r < 0) {
        Fail(SSL_ERROR_SSL, "cookie exchange failed");
        return 0;
      }
      ClearErrors();  // dropped datagrams leave reasons behind; they are not errors
    }
    if (listening_) return 0;
  }
  if (!established_) {
    if (hello_pending_) return 0;  // input stays queued until resume()
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      established_ = true;
    } else {
      int e = SSL_get_error(ssl_, r);
      switch (e) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
          ClearErrors();
          return 0;
        case SSL_ERROR_WANT_CLIENT_HELLO_CB:
          hello_pending_ = true;
          return 0;
        case SSL_ERROR_ZERO_RETURN:
          peer_closed_ = true;
          Fail(e, "the peer closed the session during the handshake");
          return 0;
        default:
          Fail(e);
          return 0;
      }
    }
  }
  ReadRecords();
  return 0;
}

void Session::ReadRecords() {
  for (;;) {
    // Decrypt straight into the queue; a record is kept only if the queue has room for it.
    uint8_t* dst = records_.Reserve(kMaxPlaintext);
    if (dst == nullptr) {
      Fail(SSL_ERROR_SSL, "out of memory");
      return;
    }
    int n = SSL_read(ssl_, dst, static_cast<int>(kMaxPlaintext));
    if (n > 0) {
      size_t len = static_cast<size_t>(n);
      if (records_.count() >= kMaxRecords || records_.bytes() + len > kMaxRecordBytes) {
        records_dropped_++;  // the reader is not keeping up: drop, as a socket buffer would
      } else {
        records_.Commit(len);
      }
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      ClearErrors();
      return;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      ClearErrors();
      return;
    }
    Fail(e);
    return;
  }
}

int64_t Session::TimeoutMs() {
  if (ssl_ == nullptr || failed_) return -1;
  struct timeval tv = {0, 0};
  if (DTLSv1_get_timeout(ssl_, &tv) != 1) return -1;
  return static_cast<int64_t>(tv.tv_sec) * 1000 + (static_cast<int64_t>(tv.tv_usec) + 999) / 1000;
}

uint32_t Session::OnTimeout() {
  if (ssl_ == nullptr || failed_) return Flags();
  ClearErrors();
  // Retransmits the last flight if OpenSSL's timer has expired; after too many attempts
  // OpenSSL gives up and the session fails.
  if (DTLSv1_handle_timeout(ssl_) < 0) Fail(SSL_ERROR_SSL, "handshake timed out");
  ClearErrors();
  return Flags();
}

bool Session::Write(const uint8_t* data, size_t len, std::string* error) {
  if (ssl_ == nullptr) {
    *error = "the session is destroyed";
    return false;
  }
  if (failed_) {
    *error = "the session failed: " + failure_.message;
    return false;
  }
  if (!established_) {
    *error = "the handshake is not complete";
    return false;
  }
  if (closed_) {
    *error = "the session is closed";
    return false;
  }
  if (len > kMaxPlaintext) {
    *error = "a record carries at most 16384 bytes";
    return false;
  }
  if (len == 0) return true;  // OpenSSL cannot send an empty record
  ClearErrors();
  int n = SSL_write(ssl_, data, static_cast<int>(len));
  if (n <= 0) {
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL) {
      Fail(e);
      *error = "the session failed: " + failure_.message;
    } else {
      *error = std::string("write failed: ") + SslErrorName(e);
      ClearErrors();
    }
    return false;
  }
  return true;
}

uint32_t Session::Close() {
  if (ssl_ == nullptr || closed_) return Flags();
  closed_ = true;
  ClearErrors();
  if (established_ && !failed_) SSL_shutdown(ssl_);  // queues close_notify; we do not wait for the peer's
  ClearErrors();
  return Flags();
}

uint32_t Session::Resume() {
  if (ssl_ == nullptr || !hello_pending_) return Flags();
  ClearErrors();
  hello_pending_ = false;
  hello_resumed_ = true;
  Advance();
  return Flags();
}

bool Session::SetCertificate(const CertificateKey& cert, std::string* error) {
  if (ssl_ == nullptr) {
    *error = "the session is destroyed";
    return false;
  }
  ClearErrors();
  // replace, not add: the context's certificate of another key type would otherwise stay, and
  // OpenSSL may pick it over this one (an ECDSA suite with an RSA certificate set here)
  SSL_certs_clear(ssl_);
  if (SSL_use_cert_and_key(ssl_, cert.leaf, cert.key, cert.chain, 1) != 1) {
    *error = DrainErrorsAsMessage("cannot use the certificate and key");
    return false;
  }
  return true;
}

bool Session::SetAlpn(const std::vector<std::string>& names, std::string* error) {
  if (ssl_ == nullptr) {
    *error = "the session is destroyed";
    return false;
  }
  std::vector<uint8_t> wire;
  if (!EncodeAlpn(names, &wire, error)) return false;
  if (is_server_) {
    has_alpn_override_ = true;
    alpn_override_ = std::move(wire);
    return true;
  }
  if (SSL_set_alpn_protos(ssl_, wire.empty() ? nullptr : wire.data(), static_cast<unsigned int>(wire.size())) != 0) {
    *error = DrainErrorsAsMessage("cannot set the ALPN protocols");
    return false;
  }
  return true;
}

bool Session::SetMtu(long mtu, std::string* error) {
  if (ssl_ == nullptr) {
    *error = "the session is destroyed";
    return false;
  }
  // SSL_set_mtu takes the largest datagram (UDP payload); OpenSSL's floor is 256 minus the overhead.
  if (mtu <= 0 || mtu > 65507 || SSL_set_mtu(ssl_, mtu) <= 0) {
    ClearErrors();
    *error = "mtu " + std::to_string(mtu) + " is out of range (" + std::to_string(256 - queue_.mtu_overhead) +
             " to 65507)";
    return false;
  }
  mtu_ = mtu;
  queue_.mtu = mtu;
  return true;
}

long Session::MaxPayload() const {
  if (ssl_ == nullptr) return 0;
  return static_cast<long>(DTLS_get_data_mtu(ssl_));
}

const char* Session::Version() const {
  if (ssl_ == nullptr || !established_) return nullptr;
  switch (SSL_version(ssl_)) {
    case DTLS1_VERSION: return "DTLSv1";
    case DTLS1_2_VERSION: return "DTLSv1.2";
    case DTLS1_BAD_VER: return "DTLSv0.9";
    default: return nullptr;
  }
}

const char* Session::CipherName() const {
  if (ssl_ == nullptr || !established_) return nullptr;
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  return cipher != nullptr ? SSL_CIPHER_standard_name(cipher) : nullptr;
}

bool Session::Alpn(std::string* out) const {
  if (ssl_ == nullptr || !established_) return false;
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  out->assign(reinterpret_cast<const char*>(data), data != nullptr ? len : 0);
  return true;
}

const std::string* Session::Sni() const {
  if (is_server_) return hello_.captured && !hello_.sni.empty() ? &hello_.sni : nullptr;
  return has_servername_ ? &servername_ : nullptr;
}

namespace {
std::vector<uint8_t> Der(X509* cert) {
  std::vector<uint8_t> out;
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return out;
  out.resize(static_cast<size_t>(len));
  unsigned char* p = out.data();
  i2d_X509(cert, &p);
  return out;
}
}  // namespace

std::vector<std::vector<uint8_t>> Session::PeerCertificates() const {
  std::vector<std::vector<uint8_t>> result;
  if (ssl_ == nullptr) return result;
  X509* leaf = SSL_get1_peer_certificate(ssl_);
  if (leaf == nullptr) return result;
  result.push_back(Der(leaf));
  // A client's chain starts with the leaf; a server's (the client's certificates) does not.
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl_);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); i++) {
    X509* cert = sk_X509_value(chain, i);
    if (i == 0 && X509_cmp(cert, leaf) == 0) continue;
    result.push_back(Der(cert));
  }
  X509_free(leaf);
  return result;
}

std::vector<uint8_t> Session::LocalCertificate() const {
  if (ssl_ == nullptr) return {};
  X509* cert = SSL_get_certificate(ssl_);
  return cert != nullptr ? Der(cert) : std::vector<uint8_t>();
}

std::string Session::VerifyError() const {
  if (ssl_ == nullptr) return "";
  long result = SSL_get_verify_result(ssl_);
  if (result == X509_V_OK) return "";
  return X509_verify_cert_error_string(result);
}

void Session::Fail(int ssl_error, const char* context_message) {
  if (failed_) {
    ClearErrors();
    return;
  }
  failed_ = true;
  failure_.ssl_error = SslErrorName(ssl_error);
  failure_.errors = DrainErrors();
  failure_.verify_error = VerifyError();
  std::string message;
  if (context_message != nullptr) {
    message = context_message;
  } else if (!failure_.errors.empty()) {
    message = ReasonOf(failure_.errors.front());
  } else {
    message = failure_.ssl_error;
  }
  if (!failure_.verify_error.empty() && message.find("certificate verify failed") != std::string::npos) {
    message += ": " + failure_.verify_error;
  }
  if (!alert_received_.empty()) {
    message += " (peer sent alert: " + alert_received_ + ")";
  } else if (!alert_sent_.empty()) {
    message += " (sent alert: " + alert_sent_ + ")";
  }
  failure_.message = message;
  hello_pending_ = false;
}

unsigned int Session::NextTimerUs(unsigned int previous_us) const {
  if (previous_us == 0) return initial_timer_us_;
  unsigned long long next = static_cast<unsigned long long>(previous_us) * 2;
  return next > max_timer_us_ ? max_timer_us_ : static_cast<unsigned int>(next);
}

void Session::CaptureClientHello() {
  hello_.captured = true;
  hello_.legacy_version = static_cast<uint16_t>(SSL_client_hello_get0_legacy_version(ssl_));
  const unsigned char* p = nullptr;
  size_t len = SSL_client_hello_get0_ciphers(ssl_, &p);
  for (size_t i = 0; p != nullptr && i + 1 < len; i += 2) {
    hello_.cipher_suites.push_back(static_cast<uint16_t>((p[i] << 8) | p[i + 1]));
  }
  // server_name: list<type(1) name<2>>; only host_name (0) counts.
  if (SSL_client_hello_get0_ext(ssl_, TLSEXT_TYPE_server_name, &p, &len) == 1) {
    const unsigned char* cur = p;
    const unsigned char* end = p + len;
    const unsigned char* list = nullptr;
    size_t list_len = 0;
    if (ReadVector16(cur, end, &list, &list_len)) {
      const unsigned char* q = list;
      const unsigned char* q_end = list + list_len;
      while (q < q_end) {
        unsigned char type = *q++;
        const unsigned char* name = nullptr;
        size_t name_len = 0;
        if (!ReadVector16(q, q_end, &name, &name_len)) break;
        if (type == TLSEXT_NAMETYPE_host_name) {
          hello_.sni.assign(reinterpret_cast<const char*>(name), name_len);
          break;
        }
      }
    }
  }
  // ALPN: list<2> of name<1>.
  if (SSL_client_hello_get0_ext(ssl_, TLSEXT_TYPE_application_layer_protocol_negotiation, &p, &len) == 1) {
    const unsigned char* cur = p;
    const unsigned char* end = p + len;
    const unsigned char* list = nullptr;
    size_t list_len = 0;
    if (ReadVector16(cur, end, &list, &list_len)) {
      const unsigned char* q = list;
      const unsigned char* q_end = list + list_len;
      while (q < q_end) {
        size_t n = *q++;
        if (static_cast<size_t>(q_end - q) < n) break;
        hello_.alpn.emplace_back(reinterpret_cast<const char*>(q), n);
        q += n;
      }
    }
  }
}

int Session::OnClientHello() {
  if (!hello_.captured) CaptureClientHello();
  if (pause_on_hello_ && !hello_resumed_) {
    hello_pending_ = true;
    return SSL_CLIENT_HELLO_RETRY;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

void Session::OnAlert(bool received, int value) {
  const char* desc = SSL_alert_desc_string_long(value);
  if (received) {
    alert_received_ = desc;
    if ((value & 0xff) == SSL_AD_CLOSE_NOTIFY) peer_closed_ = true;
  } else {
    alert_sent_ = desc;
  }
}

void Session::OnKeylog(const char* line) {
  if (keylog_.size() < 64) keylog_.emplace_back(line);
}

// --- OpenSSL callbacks -------------------------------------------------------------------

int ClientHelloCallback(SSL* ssl, int* /*alert*/, void* /*arg*/) {
  Session* session = SessionOf(ssl);
  return session != nullptr ? session->OnClientHello() : SSL_CLIENT_HELLO_SUCCESS;
}

void InfoCallback(const SSL* ssl, int where, int value) {
  if ((where & SSL_CB_ALERT) == 0) return;
  Session* session = SessionOf(ssl);
  if (session != nullptr) session->OnAlert((where & SSL_CB_READ) != 0, value);
}

void KeylogCallback(const SSL* ssl, const char* line) {
  Session* session = SessionOf(ssl);
  if (session != nullptr && line != nullptr) session->OnKeylog(line);
}

int AlpnSelectCallback(SSL* ssl, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                       unsigned int in_len, void* /*arg*/) {
  Session* session = SessionOf(ssl);
  Context* context = ContextOf(ssl);
  const std::vector<uint8_t>* server = session != nullptr ? session->AlpnOverride() : nullptr;
  if (server == nullptr && context != nullptr) server = &context->alpn_wire();
  if (server == nullptr || server->empty()) return SSL_TLSEXT_ERR_NOACK;
  unsigned char* selected = nullptr;
  // Server preference: the first of our protocols that the client offers.
  if (SSL_select_next_proto(&selected, out_len, server->data(), static_cast<unsigned int>(server->size()), in,
                            in_len) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // tolerate: go on without ALPN, as a proxy must
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int CookieGenerateCallback(SSL* ssl, unsigned char* cookie, unsigned int* cookie_len) {
  Context* context = ContextOf(ssl);
  DatagramQueue* queue = QueueOf(SSL_get_rbio(ssl));
  if (context == nullptr || queue == nullptr) return 0;
  return context->MakeCookie(queue->peer, false, cookie, cookie_len) ? 1 : 0;
}

int CookieVerifyCallback(SSL* ssl, const unsigned char* cookie, unsigned int cookie_len) {
  Context* context = ContextOf(ssl);
  DatagramQueue* queue = QueueOf(SSL_get_rbio(ssl));
  if (context == nullptr || queue == nullptr) return 0;
  unsigned char expected[EVP_MAX_MD_SIZE];
  unsigned int expected_len = 0;
  for (bool previous : {false, true}) {
    if (context->MakeCookie(queue->peer, previous, expected, &expected_len) && expected_len == cookie_len &&
        CRYPTO_memcmp(expected, cookie, cookie_len) == 0) {
      return 1;
    }
  }
  return 0;
}

int AcceptAnyCertificate(int /*preverify_ok*/, X509_STORE_CTX* /*store*/) { return 1; }

}  // namespace wirelayer
