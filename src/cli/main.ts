#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { UsageError } from './args.js';
import * as bench from './commands/bench.js';
import * as connect from './commands/connect.js';
import * as demo from './commands/demo.js';
import * as inspect from './commands/inspect.js';
import * as listen from './commands/listen.js';
import * as proxy from './commands/proxy.js';

interface Command {
  usage: string;
  run(args: string[]): Promise<number>;
}

/** Every subcommand, one module each in `commands/`. */
const COMMANDS: Record<string, Command> = { demo, listen, connect, inspect, proxy, bench };

const HELP = `wirelayer: one connection model (mitmproxy's) for TCP, TLS, UDP, DTLS and QUIC

Usage:
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage.split('\n')[0]}`)
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
  const command = COMMANDS[name];
  if (!command) {
    console.error(`wirelayer: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
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

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
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
