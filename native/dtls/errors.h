// OpenSSL's thread-local error queue, turned into readable strings.
#pragma once

#include <string>
#include <vector>

namespace wirelayer {

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
