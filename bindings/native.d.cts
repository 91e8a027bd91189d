// Types for `require('./native.cjs')` / `import native from './native.cjs'`.
export * from './index.js';
