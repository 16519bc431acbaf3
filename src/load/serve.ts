/**
 * The server end of a load run (`wirelayer listen --echo | --discard | --source`): what a
 * listener does with each session that comes up, on every stream and datagram it carries.
 *
 * - `echo`: bytes back down the same stream, each datagram back as it came.
 * - `discard`: read and drop everything.
 * - `source`: streams: write as fast as the stream takes, until the peer ends its side (what it
 *   sends is read and dropped); datagrams: answer each with one datagram of the size its header
 *   asks for (message.ts), the header copied, so a load run counts loss and times round trips.
 */
import type { Duplex } from 'node:stream';
import type { Client } from '../connection/index.js';
import type { AnySession, DatagramChannel } from '../transport/types.js';
import { headerReplySize, MAX_UDP_PAYLOAD } from './message.js';
import { DATAGRAM_HEADER_BYTES } from './spec.js';

/** What a server does with what it receives. */
export type ServeBehaviour = 'echo' | 'discard' | 'source';
/** Every `ServeBehaviour`, for parsers. */
export const SERVE_BEHAVIOURS: readonly ServeBehaviour[] = ['echo', 'discard', 'source'];

/** A source writes blocks this large. */
const SOURCE_BLOCK = 64 * 1024;
/** Reply buffers a datagram source cycles through (a send may still hold the last few). */
const SOURCE_RING = 256;

const ignore = (): void => {};

/** A stream with an `id`: a QUIC stream (unidirectional ones have bit 1 of the ID set). */
interface IdentifiedStream extends Duplex {
  readonly id: number;
}

/** A session that may open more streams (QUIC): the `stream` event. */
function hasStreams(session: AnySession<Client>): boolean {
  return session.scheme === 'quic';
}

/**
 * Serves one session that is up: its byte stream (and for QUIC every stream the peer opens and
 * its DATAGRAM frames), or its datagrams.
 */
export function serve(session: AnySession<Client>, behaviour: ServeBehaviour): void {
  if ('stream' in session) {
    serveStream(session.stream, behaviour);
    if (hasStreams(session)) {
      session.on('stream', (stream: IdentifiedStream) => {
        // a peer's unidirectional stream can only be read
        if ((stream.id & 2) !== 0) serveStream(stream, 'discard');
        else serveStream(stream, behaviour);
      });
    }
  }
  if ('datagrams' in session) serveDatagrams(session.datagrams, behaviour);
}

/** Serves one byte stream. */
export function serveStream(stream: Duplex, behaviour: ServeBehaviour): void {
  // the session records a failure in its model; an unhandled 'error' would end the process
  stream.on('error', ignore);
  // no Nagle: an echo goes back at once, not when the previous one is acknowledged
  (stream as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  if (behaviour === 'echo') {
    stream.pipe(stream);
    return;
  }
  stream.on('data', ignore);
  stream.once('end', () => stream.end());
  if (behaviour === 'source') source(stream);
}

function source(stream: Duplex): void {
  const block = Buffer.alloc(SOURCE_BLOCK, 0x78);
  let done = false;
  const stop = (): void => {
    done = true;
  };
  stream.once('end', stop);
  stream.once('close', stop);
  stream.once('error', stop);
  const pump = (): void => {
    while (!done && stream.writable) {
      if (!stream.write(block)) {
        stream.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

/** Serves one datagram channel. */
export function serveDatagrams(channel: DatagramChannel, behaviour: ServeBehaviour): void {
  if (behaviour === 'echo') {
    channel.on('datagram', (d: Uint8Array) => {
      try {
        channel.send(d);
      } catch {
        // the session is closing (QUIC throws), nothing to answer
      }
    });
  } else if (behaviour === 'discard') {
    channel.on('datagram', ignore);
  } else {
    const answer = new DatagramSource();
    channel.on('datagram', (d: Uint8Array) => {
      try {
        channel.send(answer.reply(d));
      } catch {
        // too large for the path (a QUIC DATAGRAM frame), or the session is closing
      }
    });
  }
}

/** Answers for a datagram source: a ring of buffers of the size last asked for. */
class DatagramSource {
  #ring: Buffer[] = [];
  #size = -1;
  #next = 0;

  /** The answer to `request`: as large as its header asks (or as the request), header copied. */
  reply(request: Uint8Array): Buffer {
    const asked = headerReplySize(request);
    const size = asked >= DATAGRAM_HEADER_BYTES && asked <= MAX_UDP_PAYLOAD ? asked : request.byteLength;
    if (size !== this.#size) {
      this.#size = size;
      this.#ring = Array.from({ length: SOURCE_RING }, () => Buffer.alloc(size, 0x78));
    }
    const reply = this.#ring[this.#next]!;
    this.#next = (this.#next + 1) % SOURCE_RING;
    const header = Math.min(size, request.byteLength, DATAGRAM_HEADER_BYTES);
    for (let i = 0; i < header; i++) reply[i] = request[i]!;
    return reply;
  }
}
