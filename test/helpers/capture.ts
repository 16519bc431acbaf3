/**
 * A tshark capture on loopback that the test can synchronise with. dumpcap says "Capturing on"
 * a moment before its filter is in place, and writes the last packets a moment after they pass:
 * `barrier()` sends a marker datagram to a port of our own (inside the capture filter) and waits
 * until tshark prints it. Packets on `lo` are captured in order, so after a barrier at the start
 * the capture is live, and after one at the end it holds everything sent before.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { type PeerProcess, spawnPeer } from './peer.js';

export interface LoopbackCapture {
  readonly tshark: PeerProcess;
  /** Resolves once tshark has printed a marker sent now (so it has seen everything before it). */
  barrier(): Promise<void>;
  /** A last barrier, then stops tshark by its pid: the file is complete. Idempotent. */
  stop(): Promise<void>;
}

/** Starts `tshark -i lo -f FILTER -w file` and waits until it really captures. */
export async function startLoopbackCapture(
  filter: string,
  file: string,
  timeoutMs = 10_000,
): Promise<LoopbackCapture> {
  const marker = createSocket('udp4');
  marker.bind(0, '127.0.0.1');
  await once(marker, 'listening');
  marker.on('message', () => undefined);
  const port = marker.address().port;
  // -P prints each packet as it is written, -l flushes every line (stdout is a pipe)
  const tshark = spawnPeer('tshark', [
    '-i',
    'lo',
    '-f',
    `(${filter}) or udp dst port ${port}`,
    '-w',
    file,
    '-P',
    '-l',
  ]);
  // (the peer output is read as latin1, so match around the arrow tshark prints)
  const seen = new RegExp(` ${port} Len=`, 'g');
  const markers = (): number => tshark.output().match(seen)?.length ?? 0;
  const barrier = async (): Promise<void> => {
    const before = markers();
    const deadline = performance.now() + timeoutMs;
    while (markers() === before) {
      if (performance.now() > deadline || tshark.child.exitCode !== null) {
        throw new Error(`tshark did not print a marker to port ${port}:\n${tshark.output().slice(-2000)}`);
      }
      marker.send('wirelayer capture barrier', port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await tshark.waitFor(/Capturing on/, timeoutMs);
    await barrier();
  } catch (err) {
    await tshark.stop();
    marker.close();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    tshark,
    barrier,
    stop() {
      stopped ??= (async () => {
        try {
          if (tshark.child.exitCode === null) await barrier();
        } finally {
          await tshark.stop();
          marker.close();
        }
      })();
      return stopped;
    },
  };
}
