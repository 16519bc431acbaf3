/** Options checked before anything runs, the record's shape, percentiles and the datagram header. */
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/load/histogram.js';
import {
  datagramTemplate,
  headerReplySize,
  headerSeq,
  headerTime,
  writeHeader,
} from '../../src/load/message.js';
import {
  LoadCounters,
  makeRecord,
  progressLine,
  recordShape,
  tableHead,
  tableRow,
} from '../../src/load/report.js';
import { LoadOptionError, type LoadOptions, planLoad } from '../../src/load/spec.js';

const base: LoadOptions = { scheme: 'tcp', host: '127.0.0.1', port: 9 };

/** The option a bad LoadOptions is refused for. */
function refused(options: Partial<LoadOptions>): string {
  try {
    planLoad({ ...base, ...options });
  } catch (e) {
    expect(e).toBeInstanceOf(LoadOptionError);
    expect((e as LoadOptionError).code).toBe('ERR_LOAD_OPTION');
    return (e as LoadOptionError).option;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('planLoad', () => {
  it('fills the defaults: echo, one connection, window 1, 64 B, 10 s', () => {
    expect(planLoad(base)).toMatchObject({
      mode: 'echo',
      connections: 1,
      streams: 1,
      window: 1,
      size: 64,
      rate: null,
      durationMs: 10_000,
      count: null,
      datagram: false,
      timeoutMs: 2000,
      connectTimeoutMs: 5000,
    });
    expect(planLoad({ ...base, scheme: 'quic', datagrams: true }).datagram).toBe(true);
    expect(planLoad({ ...base, scheme: 'dtls', count: 5 })).toMatchObject({
      datagram: true,
      durationMs: null,
      count: 5,
    });
  });

  it('names the bad term', () => {
    expect(refused({ rate: 0 })).toBe('rate');
    expect(refused({ rate: Number.NaN })).toBe('rate');
    expect(refused({ rate: 10, window: 4 })).toBe('window');
    expect(refused({ window: 1.5 })).toBe('window');
    expect(refused({ duration: -1 })).toBe('duration');
    expect(refused({ duration: 1, count: 1 })).toBe('count');
    expect(refused({ count: 0 })).toBe('count');
    expect(refused({ connections: 0 })).toBe('connections');
    expect(refused({ size: 0 })).toBe('size');
    expect(refused({ scheme: 'udp', size: 15 })).toBe('size'); // no room for the header
    expect(refused({ scheme: 'udp', size: 65_508 })).toBe('size');
    expect(refused({ scheme: 'quic', datagrams: true, size: 1201 })).toBe('size');
    expect(refused({ streams: 2 })).toBe('streams'); // QUIC only
    expect(refused({ scheme: 'quic', streams: 2, datagrams: true })).toBe('streams');
    expect(refused({ datagrams: true })).toBe('datagrams');
    expect(refused({ mode: 'sideways' as never })).toBe('mode');
    expect(refused({ scheme: 'sctp' as never })).toBe('scheme');
    expect(refused({ port: 0 })).toBe('port');
    expect(refused({ mode: 'receive', rate: 100 })).toBe('rate'); // a stream source sets its own pace
    expect(refused({ timeout: 0 })).toBe('timeout');
  });
});

describe('records', () => {
  it('null where a key does not apply', () => {
    expect(recordShape({ mode: 'echo', datagram: false })).toEqual({
      sent: true,
      received: true,
      loss: false,
      latency: true,
    });
    expect(recordShape({ mode: 'echo', datagram: true })).toEqual({
      sent: true,
      received: true,
      loss: true,
      latency: true,
    });
    expect(recordShape({ mode: 'send', datagram: true })).toEqual({
      sent: true,
      received: false,
      loss: false,
      latency: false,
    });
    expect(recordShape({ mode: 'receive', datagram: false })).toEqual({
      sent: false,
      received: true,
      loss: false,
      latency: false,
    });
    expect(recordShape({ mode: 'receive', datagram: true })).toEqual({
      sent: true,
      received: true,
      loss: true,
      latency: true,
    });
  });

  it('has exactly the keys of the issue, in its order, and rates per second of the span', () => {
    const c = new LoadCounters();
    c.messages = 300;
    c.bytes = 300 * 64;
    c.sent = 310;
    c.received = 300;
    c.lost = 10;
    c.handshakes = 2;
    for (let i = 1; i <= 300; i++) c.latency.record(i / 100);
    c.handshake.record(5);
    c.error('ECONNREFUSED', 3);
    const r = makeRecord('interval', 'udp', recordShape({ mode: 'echo', datagram: true }), c, 3, 0.5, 42.123);
    expect(Object.keys(r)).toEqual([
      'event',
      'scheme',
      'seconds',
      'messages',
      'messages_per_s',
      'bytes_per_s',
      'sent',
      'received',
      'loss',
      'latency_ms',
      'handshakes',
      'handshake_ms',
      'errors',
      'cpu_percent',
    ]);
    expect(Object.keys(r.latency_ms)).toEqual(['p50', 'p90', 'p99', 'p999', 'max']);
    expect(r).toMatchObject({
      seconds: 3,
      messages: 300,
      messages_per_s: 600,
      bytes_per_s: 600 * 64,
      sent: 310,
      received: 300,
      loss: 0.032258,
      handshakes: 2,
      errors: { ECONNREFUSED: 3 },
      cpu_percent: 42.1,
    });
    expect(r.latency_ms.max).toBe(3);
    expect(r.latency_ms.p50).toBeCloseTo(1.5, 2);
    expect(r.handshake_ms.p50).toBeCloseTo(5, 2);
    const row = tableRow(r);
    expect(tableHead().split('\n')[0]!.split('|').length).toBe(row.split('|').length);
    expect(row).toContain('ECONNREFUSED=3');
    expect(progressLine(r)).toMatch(
      /^wirelayer load: 3\.0 s {2}600 msg\/s .* loss 3\.23% .* 3 errors {2}cpu 42%$/,
    );
  });

  it('sums intervals into the total', () => {
    const a = new LoadCounters();
    const total = new LoadCounters();
    a.messages = 2;
    a.latency.record(1);
    a.error('X');
    a.addTo(total);
    a.reset();
    a.messages = 3;
    a.latency.record(9);
    a.error('X');
    a.addTo(total);
    expect(total.messages).toBe(5);
    expect(total.latency.count).toBe(2);
    expect(total.errors.get('X')).toBe(2);
    expect(total.latency.percentiles().max).toBe(9);
  });
});

describe('LatencyHistogram', () => {
  it('percentiles within 0.1% from microseconds to seconds, none above the max', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 100_000; i++) h.record(i / 1000); // 1 µs .. 100 ms
    const p = h.percentiles();
    expect(p.p50! / 50).toBeCloseTo(1, 2);
    expect(p.p90! / 90).toBeCloseTo(1, 2);
    expect(p.p99! / 99).toBeCloseTo(1, 2);
    expect(p.p999! / 99.9).toBeCloseTo(1, 2);
    expect(p.max).toBe(100);
    h.reset();
    expect(h.percentiles()).toEqual({ p50: null, p90: null, p99: null, p999: null, max: null });
    h.record(2500);
    expect(h.percentiles().p50).toBe(2500);
  });
});

describe('the datagram header', () => {
  it('carries the sequence number, the reply size and the send time', () => {
    const d = datagramTemplate(64);
    writeHeader(d, 2 ** 32 + 7, 1200, 12345.678901);
    expect(headerSeq(d)).toBe(7);
    expect(headerReplySize(d)).toBe(1200);
    expect(headerTime(d)).toBe(12345.678901);
    expect(d.subarray(16).every((b) => b === 0x78)).toBe(true);
    expect(headerSeq(d.subarray(0, 15))).toBe(-1);
    expect(headerTime(new Uint8Array(16).fill(0))).toBe(0);
  });
});
