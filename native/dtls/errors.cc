#include "errors.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace wirelayer {

std::vector<std::string> DrainErrors() {
  std::vector<std::string> lines;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (lines.size() < 16) lines.emplace_back(buf);
  }
  return lines;
}

std::string ReasonOf(const std::string& line) {
  // "error:<code>:<lib>:<func>:<reason>" — the reason is what follows the 4th colon.
  size_t pos = 0;
  for (int i = 0; i < 4; i++) {
    pos = line.find(':', pos);
    if (pos == std::string::npos) return line;
    pos++;
  }
  return line.substr(pos);
}

const char* SslErrorName(int code) {
  switch (code) {
    case SSL_ERROR_NONE: return "SSL_ERROR_NONE";
    case SSL_ERROR_SSL: return "SSL_ERROR_SSL";
    case SSL_ERROR_WANT_READ: return "SSL_ERROR_WANT_READ";
    case SSL_ERROR_WANT_WRITE: return "SSL_ERROR_WANT_WRITE";
    case SSL_ERROR_WANT_X509_LOOKUP: return "SSL_ERROR_WANT_X509_LOOKUP";
    case SSL_ERROR_SYSCALL: return "SSL_ERROR_SYSCALL";
    case SSL_ERROR_ZERO_RETURN: return "SSL_ERROR_ZERO_RETURN";
    case SSL_ERROR_WANT_CONNECT: return "SSL_ERROR_WANT_CONNECT";
    case SSL_ERROR_WANT_ACCEPT: return "SSL_ERROR_WANT_ACCEPT";
    case SSL_ERROR_WANT_CLIENT_HELLO_CB: return "SSL_ERROR_WANT_CLIENT_HELLO_CB";
    default: return "SSL_ERROR_UNKNOWN";
  }
}

std::string DrainErrorsAsMessage(const std::string& prefix) {
  std::vector<std::string> lines = DrainErrors();
  std::string msg = prefix;
  if (!lines.empty()) {
    msg += ": ";
    msg += ReasonOf(lines.front());
    msg += " (";
    for (size_t i = 0; i < lines.size(); i++) {
      if (i > 0) msg += "; ";
      msg += lines[i];
    }
    msg += ")";
  }
  return msg;
}

}  // namespace wirelayer
