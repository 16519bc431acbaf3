/**
 * Network namespaces a test makes and removes itself (root; `ip` and `nft` are provisioned by
 * test/setup/peers.ts): every address lives inside them, nothing touches the host's own.
 */
import { execFileSync } from 'node:child_process';
import { type PeerProcess, spawnPeer } from './peer.js';

/** Runs a command to its end; its stdout. Throws with its stderr when it fails. */
export const sh = (args: readonly string[], input?: string): string =>
  execFileSync(args[0]!, args.slice(1), { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();

/** A short id for names (interfaces are at most 15 characters): unique per test process. */
export const netnsId = (): string => `${process.pid % 100_000}${Math.floor(Math.random() * 100)}`;

/** Namespaces and the veth pairs between them; `remove()` deletes them all (their links go with them). */
export class Namespaces {
  readonly #names: string[] = [];

  /** Makes a namespace with its loopback up. */
  add(name: string): string {
    sh(['ip', 'netns', 'add', name]);
    this.#names.push(name);
    sh(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A veth pair from `a` to `b`, each end with its address (CIDR) and up. */
  link(
    a: { ns: string; dev: string; address: string },
    b: { ns: string; dev: string; address: string },
  ): void {
    sh(['ip', 'link', 'add', a.dev, 'type', 'veth', 'peer', 'name', b.dev]);
    for (const end of [a, b]) {
      sh(['ip', 'link', 'set', end.dev, 'netns', end.ns]);
      sh(['ip', '-n', end.ns, 'addr', 'add', end.address, 'dev', end.dev]);
      sh(['ip', '-n', end.ns, 'link', 'set', end.dev, 'up']);
    }
  }

  /** Runs a command in `ns` to its end. */
  exec(ns: string, args: readonly string[], input?: string): string {
    return sh(['ip', 'netns', 'exec', ns, ...args], input);
  }

  /** Spawns a peer in `ns` (`ip netns exec` execs it: the pid is the peer's). */
  spawn(ns: string, command: string, args: readonly string[]): PeerProcess {
    return spawnPeer('ip', ['netns', 'exec', ns, command, ...args]);
  }

  remove(): void {
    for (const name of this.#names.splice(0)) {
      try {
        sh(['ip', 'netns', 'del', name]);
      } catch {
        // gone already
      }
    }
  }
}
