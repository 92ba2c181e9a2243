#!/usr/bin/env node
// A native-solc-compatible command line around solc-js, for py-solc-x.
//
// No native solc binary can be installed on our machines, but solc-js (npm) can compile.
// py-solc-x only needs two things from a "solc" executable: `--version` printed like the
// native binary, and `--standard-json` reading the compiler input on stdin and writing the
// output on stdout. Imports are resolved from disk: base path first, then include paths,
// and only inside the allowed directories.
'use strict';

const fs = require('fs');
const path = require('path');

function loadSolc() {
  // Resolved from the repository's node_modules when this script sits in the repo.
  return require('solc');
}

function parseArgs(argv) {
  const opts = { basePath: null, includePaths: [], allowPaths: [], standardJson: false, version: false };
  const takeList = (value) => value.split(',').filter((s) => s.length > 0);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') && arg.startsWith('--') ? arg.split(/=(.*)/s, 2) : [arg, null];
    const value = () => (inline !== null ? inline : argv[++i]);
    switch (flag) {
      case '--version':
        opts.version = true;
        break;
      case '--standard-json':
        opts.standardJson = true;
        break;
      case '--base-path':
        opts.basePath = value();
        break;
      case '--include-path':
        opts.includePaths.push(...takeList(value()));
        break;
      case '--allow-paths':
        opts.allowPaths.push(...takeList(value()));
        break;
      case '-':
        break;
      default:
        process.stderr.write(`unrecognised option '${flag}'\n`);
        process.exit(1);
    }
  }
  return opts;
}

function isInside(file, dir) {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function makeImportCallback(opts) {
  const roots = [opts.basePath || process.cwd(), ...opts.includePaths];
  const allowed = [...roots, ...opts.allowPaths];
  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.join(root, importPath));
    for (const candidate of candidates) {
      if (!allowed.some((dir) => isInside(candidate, dir))) continue;
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        return { contents: fs.readFileSync(candidate, 'utf8') };
      }
    }
    return { error: `File not found inside the base path or any include path: ${importPath}` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const solc = loadSolc();
  if (opts.version) {
    // Same shape as the native binary, which py-solc-x parses with a regex.
    process.stdout.write(
      `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`,
    );
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write('only --version and --standard-json are supported by this wrapper\n');
    process.exit(1);
  }
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: makeImportCallback(opts) });
  process.stdout.write(output);
}

main();
