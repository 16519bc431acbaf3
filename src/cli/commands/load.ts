import { type LoadMode, LoadOptionError, type LoadOptions, type LoadRecord, load } from '../../load/index.js';
import { progressLine, tableHead, tableRow } from '../../load/report.js';
import { LOAD_MODES } from '../../load/spec.js';
import { commonOptions, parse, parseTarget, securityOptions, UsageError } from '../args.js';

export const usage = `wirelayer load SCHEME://HOST:PORT [--rate R | --window W] [--size B] [--duration S | --count N] [options]
  Load a server over tcp, tls, udp, dtls or quic and report, every second and at the end,
  messages/s, bytes/s, loss (datagrams), latency percentiles (HDR histogram), handshakes,
  errors by code and the generator's own CPU use: a Markdown table on stdout, or with --json
  one record per line ({"event": "interval" | "summary", ...}). A progress line goes to stderr
  when it is a terminal. Run \`wirelayer listen URL --echo | --discard | --source\` as the peer.
  --mode echo|send|receive  echo (default): round trips; send: to a discard server; receive: from a
                         source (streams: as fast as it sends; datagrams: one answer per request)
  --connections N        sessions in parallel (default 1)
  --streams N            QUIC: streams per session, each a channel (default 1)
  --datagrams            QUIC: DATAGRAM frames instead of streams
  --size B               message or datagram size in bytes, K and M suffixes (default 64; datagrams >= 16)
  --rate R               open loop: messages/s in total, latency from each scheduled send time
  --window W             closed loop: messages in flight per channel (default 1; echo and receive)
  --duration S           seconds of sending (default 10)
  --count N              messages (with --handshakes: sessions) in total, instead of a duration
  --handshakes           a new session per request: handshakes/s and handshake latency
                         (--connections N x --window W sessions at once at most)
  --timeout MS           a reply later than this is lost or late; the wait for replies at the end (default 2000)
  --connect-timeout MS   each connect and handshake (default 5000)
  TLS, DTLS and QUIC take --sni, --alpn, --insecure, --ca, --ciphers, --tls-min, --tls-max, --keylog.
  Exit 0 once the run is done, 1 if no session ever came up (the errors say why), 2 on bad usage.`;

const FLAGS = {
  ...commonOptions,
  mode: { type: 'string' },
  connections: { type: 'string' },
  streams: { type: 'string' },
  datagrams: { type: 'boolean' },
  size: { type: 'string' },
  rate: { type: 'string' },
  window: { type: 'string' },
  duration: { type: 'string' },
  count: { type: 'string' },
  handshakes: { type: 'boolean' },
  timeout: { type: 'string' },
  'connect-timeout': { type: 'string' },
} as const;

/** A number as given, with K/M (x1024, x1024^2) allowed where `suffixes`; a usage error naming the flag otherwise. */
function number(flag: string, text: string | undefined, suffixes = false): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  if (!m || (m[2] && !suffixes)) throw new UsageError(`--${flag}: not a number: ${text}`);
  const scale = m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1024 : 1024 * 1024;
  return Number(m[1]) * scale;
}

/** A `LoadOptions` key as the flag that sets it (connectTimeout: connect-timeout). */
const flagOf = (option: string): string => option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, FLAGS);
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`one target, not ${positionals.join(' ')}`);
  const target = parseTarget(positionals[0]);
  if (target.port === 0) throw new UsageError('PORT: the server port, not 0');
  const mode = values.mode;
  if (mode !== undefined && !(LOAD_MODES as readonly string[]).includes(mode))
    throw new UsageError(`--mode: one of ${LOAD_MODES.join(', ')}, not ${mode}`);
  const stop = new AbortController();
  const json = values.json ?? false;
  const tty = process.stderr.isTTY === true;
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  let headed = false;
  const print = (record: LoadRecord): void => {
    if (json) out(JSON.stringify(record));
    else {
      if (!headed) out(tableHead());
      headed = true;
      out(tableRow(record));
    }
  };
  const { idleTimeout: _idle, ...security } = securityOptions(values);
  const options: LoadOptions = {
    ...security,
    scheme: target.scheme,
    host: target.host,
    port: target.port,
    mode: mode as LoadMode | undefined,
    connections: number('connections', values.connections),
    streams: number('streams', values.streams),
    datagrams: values.datagrams,
    size: number('size', values.size, true),
    rate: number('rate', values.rate),
    window: number('window', values.window),
    duration: number('duration', values.duration),
    count: number('count', values.count),
    handshakes: values.handshakes,
    timeout: number('timeout', values.timeout),
    connectTimeout: number('connect-timeout', values['connect-timeout']),
    signal: stop.signal,
    onInterval: (record) => {
      print(record);
      if (tty) process.stderr.write(`\r${progressLine(record)}\x1b[K`);
    },
  };
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const summary = await load(options);
    if (tty) process.stderr.write('\r\x1b[K');
    print(summary);
    return summary.handshakes === 0 ? 1 : 0;
  } catch (e) {
    if (e instanceof LoadOptionError)
      throw new UsageError(`--${flagOf(e.option)}: ${e.message.slice(e.option.length + 2)}`);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
