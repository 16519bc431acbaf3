// A certificate chain and its private key, parsed once from PEM and shared by reference,
// so a per-SNI certificate cache hands the same parsed key to every session.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace wirelayer {

struct CertificateKey {
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = nullptr;  // intermediates, may be empty
  EVP_PKEY* key = nullptr;

  CertificateKey() = default;
  CertificateKey(const CertificateKey&) = delete;
  CertificateKey& operator=(const CertificateKey&) = delete;
  ~CertificateKey();

  // Parses `cert_pem` (leaf first, then intermediates) and `key_pem`; checks they match.
  // On failure returns nullptr and sets `error`.
  static std::shared_ptr<CertificateKey> FromPem(const std::string& cert_pem, const std::string& key_pem,
                                                 std::string* error);
};

// Every certificate found in `pem`, in order. Returns false (and sets `error`) if none.
bool ReadCertificates(const std::string& pem, STACK_OF(X509) * *out, std::string* error);

}  // namespace wirelayer
