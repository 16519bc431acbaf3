{
  "targets": [
    {
      "target_name": "wirelayer_dtls",
      "sources": [
        "native/dtls/addon.cc",
        "native/dtls/certificate.cc",
        "native/dtls/context.cc",
        "native/dtls/datagram_bio.cc",
        "native/dtls/errors.cc",
        "native/dtls/session.cc"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "OPENSSL_API_COMPAT=30000",
        "OPENSSL_NO_DEPRECATED"
      ],
      "cflags_cc": [
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter"
      ],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_ENABLE_CPP_EXCEPTIONS": "NO"
      },
      "msvs_settings": {
        "VCCLCompilerTool": {
          "AdditionalOptions": [
            "/std:c++17"
          ]
        }
      }
    },
    {
      "target_name": "wirelayer_udp",
      "defines": [
        "NAPI_VERSION=8"
      ],
      "cflags_cc": [
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter"
      ],
      "conditions": [
        [
          "OS=='linux'",
          {
            "sources": [
              "native/udp/addon.cc",
              "native/udp/loop.cc",
              "native/udp/socket.cc"
            ]
          },
          {
            "sources": [
              "native/udp/unsupported.cc"
            ]
          }
        ]
      ],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_ENABLE_CPP_EXCEPTIONS": "NO"
      },
      "msvs_settings": {
        "VCCLCompilerTool": {
          "AdditionalOptions": [
            "/std:c++17"
          ]
        }
      }
    }
  ]
}
