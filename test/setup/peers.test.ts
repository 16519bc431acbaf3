/**
 * The peer check's decision, with an injected PATH and user: nothing to do, install (root with
 * apt-get), or stop with one line naming the missing programs and the command that installs them.
 * Real files on a temporary PATH stand for installed programs.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installCommand, PEERS, planPeers, which } from './peers.js';

let root: string;
let all: string;
let some: string;
let apt: string;

function bin(dir: string, names: readonly string[], mode = 0o755): string {
  mkdirSync(dir, { recursive: true });
  for (const name of names) {
    writeFileSync(join(dir, name), '#!/bin/sh\n');
    chmodSync(join(dir, name), mode);
  }
  return dir;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'wirelayer-peers-'));
  all = bin(
    join(root, 'all'),
    PEERS.map((p) => p.binary),
  );
  some = bin(
    join(root, 'some'),
    PEERS.map((p) => p.binary).filter((b) => !['gnutls-cli', 'gnutls-serv', 'tshark'].includes(b)),
  );
  apt = bin(join(root, 'apt'), ['apt-get']);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('planPeers', () => {
  it('does nothing when every peer is on PATH, for any user', () => {
    expect(planPeers({ path: all, uid: 1000 })).toEqual({ action: 'none' });
    expect(planPeers({ path: `${apt}:${all}`, uid: 0 })).toEqual({ action: 'none' });
  });

  it('installs the missing ones package by package, as root with apt-get', () => {
    expect(planPeers({ path: `${some}:${apt}`, uid: 0 })).toEqual({
      action: 'install',
      missing: ['gnutls-cli', 'gnutls-serv', 'tshark'],
      packages: ['gnutls-bin', 'tshark'],
    });
  });

  it('stops with one line naming them and the sudo command, when not root', () => {
    const plan = planPeers({ path: `${some}:${apt}`, uid: 1000 });
    expect(plan.action).toBe('stop');
    if (plan.action !== 'stop') return;
    expect(plan.message).not.toContain('\n');
    expect(plan.message).toContain('missing gnutls-cli, gnutls-serv, tshark');
    expect(plan.message).toContain(
      'sudo apt-get update && sudo apt-get install -y --no-install-recommends gnutls-bin tshark',
    );
  });

  it('stops when root has no apt-get, naming the Debian packages', () => {
    const plan = planPeers({ path: some, uid: 0 });
    expect(plan).toMatchObject({ action: 'stop', missing: ['gnutls-cli', 'gnutls-serv', 'tshark'] });
    if (plan.action === 'stop') {
      expect(plan.message).toContain('(Debian or Ubuntu) apt-get update && apt-get install');
    }
  });

  it('needs every peer: an empty PATH misses them all, each Debian package named once', () => {
    const plan = planPeers({ path: '', uid: 0 });
    expect(plan.action).toBe('stop');
    expect(plan.action === 'stop' && plan.missing).toEqual(PEERS.map((p) => p.binary));
    expect(installCommand(['gnutls-bin', 'tshark'], true)).toBe(
      'apt-get update && apt-get install -y --no-install-recommends gnutls-bin tshark',
    );
  });

  it('counts only executable files on PATH', () => {
    const dir = bin(join(root, 'noexec'), ['tshark'], 0o644);
    expect(which('tshark', dir)).toBeNull();
    expect(which('tshark', `${dir}:${all}`)).toBe(join(all, 'tshark'));
    // an injected check: root, every file but socat there, and no apt-get
    const present = new Set(PEERS.filter((p) => p.binary !== 'socat').map((p) => join(all, p.binary)));
    const isExecutable = (f: string): boolean => present.has(f);
    expect(planPeers({ path: all, uid: 0, isExecutable })).toMatchObject({
      action: 'stop',
      missing: ['socat'],
    });
  });

  it('lists every program the tests spawn by name', () => {
    expect(PEERS.map((p) => p.binary).sort()).toEqual(
      [
        'cc',
        'curl',
        'gnutls-cli',
        'gnutls-serv',
        'gtlsclient',
        'gtlsserver',
        'ip',
        'iperf3',
        'nft',
        'openssl',
        'ps',
        'python3',
        'socat',
        'ss',
        'tshark',
      ].sort(),
    );
  });
});
