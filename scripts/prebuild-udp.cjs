// Run by `npm pack` (prepack), after prebuildify: prebuildify packs one addon per package (the
// DTLS engine, the first .node of build/Release), so the datagram socket addon that the same
// `node-gyp rebuild` built goes into prebuilds/<platform>-<arch>/udp/ here, stripped as
// prebuildify strips its own. src/transport/datagram/loader.ts looks for it there.
const { execFileSync } = require('node:child_process');
const { copyFileSync, existsSync, mkdirSync } = require('node:fs');
const { arch, platform } = require('node:os');
const { join } = require('node:path');

const built = join('build', 'Release', 'wirelayer_udp.node');
if (!existsSync(built)) {
  console.error(`prebuild-udp: ${built} is missing (node-gyp did not build the wirelayer_udp target)`);
  process.exit(1);
}
const libc = platform() === 'linux' && existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
const dir = join('prebuilds', `${platform()}-${arch()}`, 'udp');
mkdirSync(dir, { recursive: true });
const target = join(dir, `wirelayer_udp.${libc}.node`);
copyFileSync(built, target);
if (platform() === 'linux') execFileSync('strip', ['--strip-all', target]);
else if (platform() === 'darwin') execFileSync('strip', ['-Sx', target]);
console.log(`prebuild-udp: ${target}`);
