// The DTLS context: one SSL_CTX and the configuration every session of it shares, the
// cookie secret, and a reusable SSL for the stateless HelloVerifyRequest exchange.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datagram_bio.h"

namespace wirelayer {

struct ContextConfig {
  bool is_server = false;
  std::string cert_pem;  // leaf first, then intermediates
  std::string key_pem;
  std::string ca_pem;    // trust anchors; empty = none loaded
  bool verify_peer = true;
  bool request_cert = false;  // server: ask the client for a certificate
  int min_version = DTLS1_2_VERSION;
  int max_version = DTLS1_2_VERSION;
  std::string ciphers;  // OpenSSL cipher string; empty = OpenSSL's default
  std::vector<std::string> alpn;
  bool cookie_exchange = true;
  bool pause_on_client_hello = false;
  bool keylog = false;
  long mtu = 1200;
  long mtu_overhead = 28;
  uint32_t initial_retransmit_ms = 1000;
  uint32_t max_retransmit_ms = 60000;
};

// ALPN protocol names in the wire format (length-prefixed); false if a name is empty or too long.
bool EncodeAlpn(const std::vector<std::string>& names, std::vector<uint8_t>* wire, std::string* error);

class Context {
 public:
  static std::shared_ptr<Context> Create(const ContextConfig& config, std::string* error);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  SSL_CTX* ssl_ctx() const { return ssl_ctx_; }
  const ContextConfig& config() const { return config_; }
  const std::vector<uint8_t>& alpn_wire() const { return alpn_wire_; }

  // Stateless check of a datagram from a peer that has no session yet.
  // Returns 1: a ClientHello carrying a valid cookie (create the session and feed it the
  // same datagram); 0: answer with `reply` (a HelloVerifyRequest); -1: drop it.
  int StatelessCookieCheck(const uint8_t* data, size_t len, const std::string& peer, std::vector<uint8_t>* reply);
  // Starts a new cookie secret; cookies made with the previous one stay valid until the next rotation.
  void RotateCookieSecret();

  bool MakeCookie(const std::string& peer, bool previous, uint8_t* out, unsigned int* out_len) const;

 private:
  Context() = default;
  bool Configure(std::string* error);

  ContextConfig config_;
  SSL_CTX* ssl_ctx_ = nullptr;
  std::vector<uint8_t> alpn_wire_;
  uint8_t secret_[32] = {};
  uint8_t previous_secret_[32] = {};
  bool has_previous_secret_ = false;

  SSL* listener_ = nullptr;
  DatagramQueue listener_queue_;
  BIO_ADDR* listener_addr_ = nullptr;
};

// The Context an SSL belongs to (set as the SSL_CTX's app data).
Context* ContextOf(const SSL* ssl);

}  // namespace wirelayer
