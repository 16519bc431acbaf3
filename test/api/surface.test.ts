/**
 * The public surface is `src/index.ts`, listed by hand: every name it exports is documented
 * (TSDoc on its declaration), and the QUIC and DTLS plumbing stays out of it.
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const entry = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

function exportedSymbols(): { checker: ts.TypeChecker; symbols: ts.Symbol[] } {
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (!source) throw new Error('no src/index.ts');
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error('src/index.ts is not a module');
  return { checker, symbols: checker.getExportsOfModule(moduleSymbol) };
}

const { checker, symbols } = exportedSymbols();
const names = symbols.map((s) => s.getName());

describe('the public surface (src/index.ts)', () => {
  it('documents every exported declaration', () => {
    const undocumented = symbols
      .map((s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s))
      .filter((s) => {
        const declarations = s.getDeclarations() ?? [];
        return !declarations.some((d) => ts.getJSDocCommentsAndTags(d).length > 0 || hasDocOnStatement(d));
      })
      .map((s) => s.getName());
    expect(undocumented).toEqual([]);
  });

  it('exports the drivers, the model, the errors, the hooks, handshake and capture functions', () => {
    for (const name of [
      'tcp',
      'tls',
      'udp',
      'dtls',
      'quic',
      'drivers',
      'Client',
      'Server',
      'ConnectionState',
      'ConnectError',
      'HandshakeParseError',
      'parseClientHello',
      'decryptInitial',
      'ja3',
      'ja4',
      'readFlows',
      'inspectCapture',
      'CertificateAuthority',
      'UdpRelay',
    ]) {
      expect(names).toContain(name);
    }
  });

  it('keeps plumbing private', () => {
    for (const name of [
      'quiche',
      'QuicEndpoint',
      'DtlsContext',
      'DtlsSession',
      'FlowTable',
      'flowKey',
      'LruMap',
    ]) {
      expect(names).not.toContain(name);
    }
  });
});

/** `export const x = ...` carries its comment on the variable statement, not the declaration. */
function hasDocOnStatement(d: ts.Declaration): boolean {
  const statement = ts.isVariableDeclaration(d) ? d.parent.parent : undefined;
  return statement !== undefined && ts.getJSDocCommentsAndTags(statement as ts.Node).length > 0;
}
