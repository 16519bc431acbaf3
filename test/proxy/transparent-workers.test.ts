/** A transparent mode binds its own IP_TRANSPARENT sockets: it does not run in worker processes. */
import { describe, expect, it } from 'vitest';
import { proxyWorkers } from '../../src/workers/index.js';

describe('proxy --workers with a transparent mode', () => {
  it('is refused before any worker starts, with a coded error that says why', async () => {
    await expect(proxyWorkers({ modes: ['transparent@127.0.0.1:0'], workers: 2 })).rejects.toMatchObject({
      code: 'ERR_WORKERS_MODE',
      message: expect.stringMatching(/transparent mode runs in one process/),
    });
  });
});
