/**
 * NSS key log (SSLKEYLOGFILE format) for QUIC sessions. The binding can only make quiche
 * write to a file it creates (truncating), so each session logs to its own temporary file;
 * its lines are appended to the user's file (or handed to the callback) once the handshake
 * is done, and at close, and the temporary file is removed.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from '../../connection/index.js';
import { type KeylogSink, keylogSink } from '../keylog.js';
import type { SecurityOptions } from '../types.js';
import type { QuicheConnection } from './binding.js';

export type KeylogTarget = NonNullable<SecurityOptions['keylog']>;

export class SessionKeylog {
  readonly #path = join(tmpdir(), `wirelayer-quic-keylog-${process.pid}-${randomBytes(6).toString('hex')}`);
  #delivered = 0;
  #closed = false;

  readonly #sink: KeylogSink;

  constructor(
    readonly target: KeylogTarget,
    engine: QuicheConnection,
  ) {
    this.#sink = keylogSink(target)!;
    engine.setKeylog(this.#path);
  }

  /** Delivers the lines written since the last call. Never throws. */
  drain(conn: Connection): void {
    if (this.#closed) return;
    let text: Buffer;
    try {
      text = readFileSync(this.#path);
    } catch {
      return;
    }
    // only whole lines
    const end = text.lastIndexOf(0x0a) + 1;
    if (end <= this.#delivered) return;
    const fresh = text.subarray(this.#delivered, end);
    this.#delivered = end;
    if (typeof this.target === 'string') {
      this.#sink(fresh, conn); // one append for the batch
      return;
    }
    for (let start = 0; start < fresh.length; ) {
      const nl = fresh.indexOf(0x0a, start);
      this.#sink(Buffer.from(fresh.subarray(start, nl + 1)), conn);
      start = nl + 1;
    }
  }

  /** Delivers what is left and removes the temporary file. */
  close(conn: Connection): void {
    this.drain(conn);
    this.#closed = true;
    rmSync(this.#path, { force: true });
  }
}
