// One DTLS association, sans-IO: datagrams in, datagrams out, a timer to ask about.
// No sockets, threads or timers of its own; every call runs to completion.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "certificate.h"
#include "context.h"
#include "datagram_bio.h"
#include "packet_queue.h"

namespace wirelayer {

// Status bits returned by every call that can change the session (mirrored in TypeScript).
enum SessionFlag : uint32_t {
  kOutgoing = 1u << 0,     // datagrams are waiting in takeOutgoing()
  kData = 1u << 1,         // application records are waiting in read()
  kEstablished = 1u << 2,  // the handshake is complete
  kClientHello = 1u << 3,  // server paused on the ClientHello, waiting for resume()
  kTimer = 1u << 4,        // the retransmission timer was armed or stopped: ask timeout()
  kPeerClosed = 1u << 5,   // the peer sent close_notify
  kFailed = 1u << 6,       // fatal error: see the failure
  kKeylog = 1u << 7,       // key log lines are waiting in takeKeylog()
  kClosed = 1u << 8,       // we sent close_notify (or the session is destroyed)
  kListening = 1u << 9,    // server still in the cookie exchange
};

struct SessionConfig {
  bool has_servername = false;
  std::string servername;  // client: SNI to send
  bool has_alpn = false;
  std::vector<std::string> alpn;  // client: offers (overrides the context's)
  bool has_check_host = false;
  std::string check_host;  // client: name or IP the certificate must match
  long mtu = 0;            // 0 = the context's
  std::string peer;        // server: the peer address the cookie is bound to
  int pause_on_client_hello = -1;  // -1 = the context's
  uint32_t initial_retransmit_ms = 0;  // 0 = the context's
  uint32_t max_retransmit_ms = 0;      // 0 = the context's
};

struct ClientHelloInfo {
  bool captured = false;
  std::string sni;
  std::vector<std::string> alpn;
  std::vector<uint16_t> cipher_suites;
  uint16_t legacy_version = 0;
};

struct Failure {
  std::string ssl_error;
  std::vector<std::string> errors;
  std::string verify_error;
  std::string message;
};

class Session {
 public:
  static std::unique_ptr<Session> Create(std::shared_ptr<Context> context, const SessionConfig& config,
                                         std::string* error);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Frees the SSL and everything queued; later calls report kClosed. Safe to repeat.
  void Destroy();
  bool destroyed() const { return ssl_ == nullptr; }
  bool is_server() const { return is_server_; }

  uint32_t Start();
  uint32_t Receive(const uint8_t* data, size_t len);
  int64_t TimeoutMs();
  uint32_t OnTimeout();
  // Encrypts one application record; false (with `error`) if the session cannot send.
  bool Write(const uint8_t* data, size_t len, std::string* error);
  uint32_t Close();
  uint32_t Resume();
  uint32_t Flags();

  bool SetCertificate(const CertificateKey& cert, std::string* error);
  bool SetAlpn(const std::vector<std::string>& names, std::string* error);
  bool SetMtu(long mtu, std::string* error);
  long MaxPayload() const;

  // Queries.
  const char* Version() const;  // null before the handshake completes
  const char* CipherName() const;
  bool Alpn(std::string* out) const;  // false before the handshake completes
  const std::string* Sni() const;
  std::vector<std::vector<uint8_t>> PeerCertificates() const;
  std::vector<uint8_t> LocalCertificate() const;
  std::string VerifyError() const;  // "" when verified or not checked
  const ClientHelloInfo& client_hello() const { return hello_; }
  const Failure* failure() const { return failed_ ? &failure_ : nullptr; }
  const std::string& alert_sent() const { return alert_sent_; }
  const std::string& alert_received() const { return alert_received_; }

  DatagramQueue& queue() { return queue_; }
  // Received application records, oldest first; the binding pops what it hands out.
  PacketQueue& records() { return records_; }
  std::vector<std::string>& keylog() { return keylog_; }
  uint64_t records_dropped() const { return records_dropped_; }
  uint64_t garbage_dropped() const { return garbage_dropped_; }

  // Called from OpenSSL's callbacks.
  int OnClientHello();
  void OnAlert(bool received, int value);
  void OnKeylog(const char* line);
  unsigned int NextTimerUs(unsigned int previous_us) const;
  const std::vector<uint8_t>* AlpnOverride() const { return has_alpn_override_ ? &alpn_override_ : nullptr; }

 private:
  Session() = default;
  uint32_t Advance();
  void ReadRecords();
  void Fail(int ssl_error, const char* context_message = nullptr);
  void CaptureClientHello();
  size_t MinProtectedRecord() const;
  bool AcceptableDatagram(const uint8_t* data, size_t len) const;

  std::shared_ptr<Context> context_;
  SSL* ssl_ = nullptr;
  DatagramQueue queue_;
  BIO_ADDR* listen_addr_ = nullptr;
  bool is_server_ = false;
  bool listening_ = false;
  bool started_ = false;
  bool established_ = false;
  bool failed_ = false;
  bool peer_closed_ = false;
  bool closed_ = false;
  bool pause_on_hello_ = false;
  bool hello_pending_ = false;
  bool hello_resumed_ = false;
  long mtu_ = 0;
  unsigned int initial_timer_us_ = 1000000;
  unsigned int max_timer_us_ = 60000000;
  bool has_servername_ = false;
  std::string servername_;
  bool has_alpn_override_ = false;
  std::vector<uint8_t> alpn_override_;
  ClientHelloInfo hello_;
  Failure failure_;
  std::string alert_sent_;
  std::string alert_received_;
  PacketQueue records_;
  uint64_t records_dropped_ = 0;
  uint64_t garbage_dropped_ = 0;
  std::vector<std::string> keylog_;
};

Session* SessionOf(const SSL* ssl);

// OpenSSL callbacks, installed on every context.
int ClientHelloCallback(SSL* ssl, int* alert, void* arg);
void InfoCallback(const SSL* ssl, int where, int value);
void KeylogCallback(const SSL* ssl, const char* line);
int AlpnSelectCallback(SSL* ssl, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                       unsigned int in_len, void* arg);
int CookieGenerateCallback(SSL* ssl, unsigned char* cookie, unsigned int* cookie_len);
int CookieVerifyCallback(SSL* ssl, const unsigned char* cookie, unsigned int cookie_len);
int AcceptAnyCertificate(int preverify_ok, X509_STORE_CTX* store);

}  // namespace wirelayer
