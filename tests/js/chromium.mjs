// How every script here starts Debian's Chromium through playwright-core
// (which downloads no browser): its path and flags. Without the
// background-networking flags Chromium keeps dialing hosts this machine
// cannot reach; --no-sandbox because CI runs as root.
export const EXECUTABLE = '/usr/bin/chromium';
export const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
