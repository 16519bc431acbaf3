#include "certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "errors.h"

namespace wirelayer {

CertificateKey::~CertificateKey() {
  X509_free(leaf);
  sk_X509_pop_free(chain, X509_free);
  EVP_PKEY_free(key);
}

bool ReadCertificates(const std::string& pem, STACK_OF(X509) * *out, std::string* error) {
  *out = nullptr;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) {
    *error = DrainErrorsAsMessage("cannot read PEM");
    return false;
  }
  STACK_OF(X509)* certs = sk_X509_new_null();
  X509* cert;
  while ((cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) != nullptr) {
    sk_X509_push(certs, cert);
  }
  BIO_free(bio);
  // Reading stops at the end of the input with a "no start line" error: expected.
  ERR_clear_error();
  if (sk_X509_num(certs) == 0) {
    sk_X509_free(certs);
    *error = "no PEM certificate found";
    return false;
  }
  *out = certs;
  return true;
}

std::shared_ptr<CertificateKey> CertificateKey::FromPem(const std::string& cert_pem, const std::string& key_pem,
                                                       std::string* error) {
  ERR_clear_error();
  auto result = std::make_shared<CertificateKey>();
  STACK_OF(X509)* certs = nullptr;
  if (!ReadCertificates(cert_pem, &certs, error)) {
    *error = "cert: " + *error;
    return nullptr;
  }
  result->leaf = sk_X509_shift(certs);
  result->chain = certs;

  BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  if (bio != nullptr) {
    result->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
  }
  if (result->key == nullptr) {
    *error = DrainErrorsAsMessage("key: cannot parse the PEM private key");
    return nullptr;
  }
  if (X509_check_private_key(result->leaf, result->key) != 1) {
    *error = DrainErrorsAsMessage("key: the private key does not match the certificate");
    return nullptr;
  }
  return result;
}

}  // namespace wirelayer
