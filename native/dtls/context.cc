#include "context.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "certificate.h"
#include "errors.h"
#include "session.h"

namespace wirelayer {

bool EncodeAlpn(const std::vector<std::string>& names, std::vector<uint8_t>* wire, std::string* error) {
  wire->clear();
  for (const std::string& name : names) {
    if (name.empty() || name.size() > 255) {
      *error = "ALPN protocol names must be 1 to 255 bytes long";
      return false;
    }
    wire->push_back(static_cast<uint8_t>(name.size()));
    wire->insert(wire->end(), name.begin(), name.end());
  }
  if (wire->size() > 65535) {
    *error = "ALPN list too long";
    return false;
  }
  return true;
}

Context* ContextOf(const SSL* ssl) {
  if (ssl == nullptr) return nullptr;
  return static_cast<Context*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
}

std::shared_ptr<Context> Context::Create(const ContextConfig& config, std::string* error) {
  ClearErrors();
  std::shared_ptr<Context> context(new Context());
  context->config_ = config;
  if (!context->Configure(error)) return nullptr;
  return context;
}

bool Context::Configure(std::string* error) {
  const ContextConfig& c = config_;
  ssl_ctx_ = SSL_CTX_new(DTLS_method());
  if (ssl_ctx_ == nullptr) {
    *error = DrainErrorsAsMessage("SSL_CTX_new(DTLS_method()) failed");
    return false;
  }
  SSL_CTX_set_app_data(ssl_ctx_, this);

  if (!SSL_CTX_set_min_proto_version(ssl_ctx_, c.min_version) ||
      !SSL_CTX_set_max_proto_version(ssl_ctx_, c.max_version)) {
    *error = DrainErrorsAsMessage("cannot set the DTLS version range");
    return false;
  }
  // The driver sets the MTU; nothing is ever asked of a socket. No renegotiation, no session
  // cache or tickets: every session is a full handshake with its own state. No
  // Encrypt-then-MAC: OpenSSL 3 answers a bad EtM MAC with a fatal alert instead of
  // discarding the record (openssl/openssl#24972), which lets one spoofed datagram end a
  // CBC session; with MAC-then-encrypt it discards it, as DTLS must.
  SSL_CTX_set_options(ssl_ctx_, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_ENCRYPT_THEN_MAC);
  SSL_CTX_set_session_cache_mode(ssl_ctx_, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ssl_ctx_, SSL_MODE_AUTO_RETRY);

  if (!c.ciphers.empty() && SSL_CTX_set_cipher_list(ssl_ctx_, c.ciphers.c_str()) != 1) {
    *error = DrainErrorsAsMessage("invalid cipher string '" + c.ciphers + "'");
    return false;
  }

  if (!c.cert_pem.empty() || !c.key_pem.empty()) {
    std::string cert_error;
    auto cert = CertificateKey::FromPem(c.cert_pem, c.key_pem, &cert_error);
    if (cert == nullptr) {
      *error = cert_error;
      return false;
    }
    if (SSL_CTX_use_cert_and_key(ssl_ctx_, cert->leaf, cert->key, cert->chain, 1) != 1) {
      *error = DrainErrorsAsMessage("cannot use the certificate and key");
      return false;
    }
  }

  if (!c.ca_pem.empty()) {
    STACK_OF(X509)* cas = nullptr;
    std::string ca_error;
    if (!ReadCertificates(c.ca_pem, &cas, &ca_error)) {
      *error = "ca: " + ca_error;
      return false;
    }
    X509_STORE* store = SSL_CTX_get_cert_store(ssl_ctx_);
    for (int i = 0; i < sk_X509_num(cas); i++) X509_STORE_add_cert(store, sk_X509_value(cas, i));
    sk_X509_pop_free(cas, X509_free);
    ClearErrors();  // duplicates in the bundle are harmless
  }

  if (c.is_server) {
    int mode = SSL_VERIFY_NONE;
    if (c.request_cert) mode = SSL_VERIFY_PEER | (c.verify_peer ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(ssl_ctx_, mode, c.request_cert && !c.verify_peer ? AcceptAnyCertificate : nullptr);
    SSL_CTX_set_cookie_generate_cb(ssl_ctx_, CookieGenerateCallback);
    SSL_CTX_set_cookie_verify_cb(ssl_ctx_, CookieVerifyCallback);
    SSL_CTX_set_client_hello_cb(ssl_ctx_, ClientHelloCallback, nullptr);
    SSL_CTX_set_alpn_select_cb(ssl_ctx_, AlpnSelectCallback, nullptr);
  } else {
    // Unverified clients still get the chain and the verify result, for the model.
    SSL_CTX_set_verify(ssl_ctx_, c.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  }

  if (!EncodeAlpn(c.alpn, &alpn_wire_, error)) return false;
  if (!c.is_server && !alpn_wire_.empty() &&
      SSL_CTX_set_alpn_protos(ssl_ctx_, alpn_wire_.data(), static_cast<unsigned int>(alpn_wire_.size())) != 0) {
    *error = DrainErrorsAsMessage("cannot set the ALPN protocols");
    return false;
  }

  SSL_CTX_set_info_callback(ssl_ctx_, InfoCallback);
  if (c.keylog) SSL_CTX_set_keylog_callback(ssl_ctx_, KeylogCallback);

  if (RAND_bytes(secret_, sizeof secret_) != 1) {
    *error = DrainErrorsAsMessage("cannot draw the cookie secret");
    return false;
  }
  return true;
}

Context::~Context() {
  if (listener_ != nullptr) SSL_free(listener_);
  BIO_ADDR_free(listener_addr_);
  if (ssl_ctx_ != nullptr) {
    SSL_CTX_set_app_data(ssl_ctx_, nullptr);
    SSL_CTX_free(ssl_ctx_);
  }
  OPENSSL_cleanse(secret_, sizeof secret_);
  OPENSSL_cleanse(previous_secret_, sizeof previous_secret_);
}

void Context::RotateCookieSecret() {
  std::copy(std::begin(secret_), std::end(secret_), std::begin(previous_secret_));
  has_previous_secret_ = true;
  if (RAND_bytes(secret_, sizeof secret_) != 1) ClearErrors();
}

bool Context::MakeCookie(const std::string& peer, bool previous, uint8_t* out, unsigned int* out_len) const {
  if (previous && !has_previous_secret_) return false;
  const uint8_t* key = previous ? previous_secret_ : secret_;
  // HMAC-SHA256(secret, peer address): recomputable from the next ClientHello alone.
  return HMAC(EVP_sha256(), key, 32, reinterpret_cast<const unsigned char*>(peer.data()), peer.size(), out,
              out_len) != nullptr;
}

int Context::StatelessCookieCheck(const uint8_t* data, size_t len, const std::string& peer,
                                  std::vector<uint8_t>* reply) {
  ClearErrors();
  if (!config_.is_server || len == 0) return -1;
  if (listener_ == nullptr) {
    // One SSL per context, reset by DTLSv1_listen's own SSL_clear on every call.
    listener_ = SSL_new(ssl_ctx_);
    listener_addr_ = BIO_ADDR_new();
    BIO* bio = listener_ != nullptr ? NewDatagramBio(&listener_queue_) : nullptr;
    if (listener_ == nullptr || listener_addr_ == nullptr || bio == nullptr) {
      BIO_free(bio);
      ClearErrors();
      return -1;
    }
    SSL_set_bio(listener_, bio, bio);
    SSL_set_accept_state(listener_);
    listener_queue_.mtu_overhead = config_.mtu_overhead;
  }
  listener_queue_.ClearOut();
  listener_queue_.ClearInput();
  listener_queue_.peer = peer;
  listener_queue_.Borrow(data, len);
  int r = DTLSv1_listen(listener_, listener_addr_);
  listener_queue_.ClearInput();  // never keep the datagram: that is the point
  ClearErrors();
  if (r == 1) {
    listener_queue_.ClearOut();
    return 1;
  }
  if (r == 0 && !listener_queue_.out.empty()) {
    reply->assign(listener_queue_.out.Front(), listener_queue_.out.Front() + listener_queue_.out.Size(0));
    listener_queue_.ClearOut();
    return 0;
  }
  listener_queue_.ClearOut();
  return -1;
}

}  // namespace wirelayer
