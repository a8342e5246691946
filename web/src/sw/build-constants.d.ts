// Constants build.mjs puts into the worker (esbuild `define`).
/** The app shell: every path the worker caches for offline use. */
declare const __SHELL_FILES__: string[];
/** Changes whenever a file of the shell does: names the cache. */
declare const __SHELL_VERSION__: string;
