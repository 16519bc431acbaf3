// OpenSSL's thread-local error queue, turned into readable strings.
#pragma once

#include <openssl/err.h>

#include <string>
#include <vector>

namespace wirelayer {

// Empties OpenSSL's error queue before a call, so SSL_get_error sees only that call's errors.
// Peeking first is much cheaper than clearing an already empty queue on every record.
inline void ClearErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// Drains the error queue into lines such as
// "error:0A000086:SSL routines::certificate verify failed".
std::vector<std::string> DrainErrors();
// The reason of the first error in `lines` ("certificate verify failed"), or "".
std::string ReasonOf(const std::string& line);
// SSL_ERROR_* as its name.
const char* SslErrorName(int code);
// Drains the queue into one message, for exceptions thrown while configuring.
std::string DrainErrorsAsMessage(const std::string& prefix);

}  // namespace wirelayer
