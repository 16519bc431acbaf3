/**
 * The value types of the connection model, as in `mitmproxy.connection`.
 */

/** Bit flags of a connection's state. OPEN is CAN_READ | CAN_WRITE. */
export const ConnectionState = {
  CLOSED: 0,
  CAN_READ: 1,
  CAN_WRITE: 2,
  OPEN: 3,
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** Lower-case state name, as mitmproxy prints it (`state=can_read`). */
export function connectionStateName(state: ConnectionState): 'closed' | 'can_read' | 'can_write' | 'open' {
  switch (state) {
    case ConnectionState.CLOSED:
      return 'closed';
    case ConnectionState.CAN_READ:
      return 'can_read';
    case ConnectionState.CAN_WRITE:
      return 'can_write';
    default:
      return 'open';
  }
}

export const TRANSPORT_PROTOCOLS = ['tcp', 'udp'] as const;
/** `tcp` (TCP, TLS) or `udp` (UDP, DTLS, QUIC). */
export type TransportProtocol = (typeof TRANSPORT_PROTOCOLS)[number];

/** mitmproxy's nine TLS versions, then wirelayer's two additions (DTLSv1.3, QUICv2). */
export const TLS_VERSIONS = [
  'SSLv3',
  'TLSv1',
  'TLSv1.1',
  'TLSv1.2',
  'TLSv1.3',
  'DTLSv0.9',
  'DTLSv1',
  'DTLSv1.2',
  'QUICv1',
  'DTLSv1.3',
  'QUICv2',
] as const;
/** A negotiated protocol version, by name: `SSLv3` ... `TLSv1.3`, `DTLSv0.9` ... `DTLSv1.3`, `QUICv1`, `QUICv2`. */
export type TlsVersion = (typeof TLS_VERSIONS)[number];

/** `[host, port]`, or for IPv6 `[host, port, flowinfo, scopeId]`. */
export type Address =
  | readonly [host: string, port: number]
  | readonly [host: string, port: number, flowinfo: number, scopeId: number];

/** Upstream proxy spec: `[scheme, [host, port]]`. */
export type ServerSpec = readonly [
  scheme: 'http' | 'https' | 'http3' | 'tls' | 'dtls' | 'tcp' | 'udp' | 'dns' | 'quic',
  address: readonly [host: string, port: number],
];
export const VIA_SCHEMES = ['http', 'https', 'http3', 'tls', 'dtls', 'tcp', 'udp', 'dns', 'quic'] as const;
