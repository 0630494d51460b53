// Module hooks that let Node 20 load `@motiadev/stream-client-browser`
// 0.2.2 unmodified: its dist is ES modules in `.js` files without
// `"type": "module"`, importing its own files without extensions
// (`from './src/stream'`), as bundlers allow and Node does not. Inside that
// dist only: a relative import without an extension gets `.js`, and every
// `.js` file loads as a module. Registered by `state-motia.mjs` with
// `module.register`.
const DIST = '/node_modules/@motiadev/stream-client-browser/dist/';

const inDist = (url) => typeof url === 'string' && url.startsWith('file:') && url.includes(DIST);

export async function resolve(specifier, context, nextResolve) {
  if (inDist(context.parentURL) && specifier.startsWith('.') && !/\.[cm]?js$/.test(specifier)) {
    return nextResolve(`${specifier}.js`, context);
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (inDist(url) && url.endsWith('.js')) {
    return nextLoad(url, { ...context, format: 'module' });
  }
  return nextLoad(url, context);
}
