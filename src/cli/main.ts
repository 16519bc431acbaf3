#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.js';

/** What a module in `commands/` exports. */
export interface Command {
  usage: string;
  run(args: string[]): Promise<number>;
}

/**
 * Every subcommand: the first line of its usage (for `--help`) and its module, loaded only when
 * that command runs, so one command's dependencies (the benchmarks, a native addon) cannot break
 * another. test/package/cli.test.ts checks each line against the module's own `usage`.
 */
export const COMMANDS: Record<string, { synopsis: string; load(): Promise<Command> }> = {
  demo: { synopsis: 'wirelayer demo [--json]', load: () => import('./commands/demo.js') },
  listen: {
    synopsis: 'wirelayer listen SCHEME://HOST:PORT [options]',
    load: () => import('./commands/listen.js'),
  },
  connect: {
    synopsis: 'wirelayer connect SCHEME://HOST:PORT [options]',
    load: () => import('./commands/connect.js'),
  },
  inspect: { synopsis: 'wirelayer inspect CAPTURE [--json]', load: () => import('./commands/inspect.js') },
  proxy: {
    synopsis:
      'wirelayer proxy --mode reverse:SCHEME://HOST:PORT[@[HOST:]PORT] | socks5[@[HOST:]PORT] | transparent[@[HOST:]PORT] [--mode ...] [options]',
    load: () => import('./commands/proxy.js'),
  },
  load: {
    synopsis:
      'wirelayer load SCHEME://HOST:PORT [--rate R | --window W] [--size B] [--duration S | --count N] [options]',
    load: () => import('./commands/load.js'),
  },
  bench: {
    synopsis: 'wirelayer bench NAME [options] | wirelayer bench all',
    load: () => import('./commands/bench.js'),
  },
};

const HELP = `wirelayer: one connection model (mitmproxy's) for TCP, TLS, UDP, DTLS and QUIC

Usage:
${Object.values(COMMANDS)
  .map((c) => `  ${c.synopsis}`)
  .join('\n')}

SCHEME is one of tcp, tls, udp, dtls, quic. Shared options:
  --json                one JSON object per line on stdout: {"event", "driver", "role", ...state}
  --sni NAME            --alpn a,b            --insecure (no peer verification)
  --ca FILE             --cert FILE --key FILE
  --tls-min V           --tls-max V           (TLSv1 ... TLSv1.3, DTLSv1, DTLSv1.2)
  --ciphers STR         an OpenSSL cipher string, e.g. DEFAULT@SECLEVEL=0
  --keylog FILE         NSS key log (SSLKEYLOGFILE format)
  --idle-timeout SECONDS
Exit status: 0 success, 1 connect failed, 2 bad usage. \`wirelayer COMMAND --help\` for more.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.error(HELP);
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    console.error(`wirelayer: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  const command = await entry.load();
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`wirelayer ${name}: ${e.message}\n\n${command.usage}`);
      return 2;
    }
    throw e;
  }
}

/**
 * Whether this file is the program node was started with. Installed, it runs through npm's bin
 * symlink (node_modules/.bin/wirelayer): argv[1] is the link, import.meta.url the real file.
 */
function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(`wirelayer: ${(e as Error).stack ?? String(e)}`);
      process.exitCode = 1;
    },
  );
}
