// The datagram addon where its syscalls (recvmmsg, sendmmsg, UDP GSO/GRO, IP_PKTINFO) do not
// exist: it loads and says so, and the drivers use node:dgram.
#include <node_api.h>

namespace {

napi_value Module(napi_env env, napi_value exports) {
  napi_value supported = nullptr;
  napi_get_boolean(env, false, &supported);
  napi_set_named_property(env, exports, "supported", supported);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Module)
