// Loader for the Rust (napi-rs) addon built by bindings/build.sh.
// CommonJS so it can `require` the .node file; from ESM use
// `createRequire(import.meta.url)('../bindings/native.cjs')` or a default import.
'use strict';

const path = require('node:path');

const addonPath = path.join(__dirname, 'native', 'secflow_native.node');

let addon;
try {
  addon = require(addonPath);
} catch (err) {
  const e = new Error(
    `secflow native addon not found or failed to load at ${addonPath}; ` +
      `run \`bash bindings/build.sh\` first (${err && err.message})`,
  );
  e.cause = err;
  throw e;
}

module.exports = addon;
