#!/usr/bin/env node
// A `solc` for Slither (crytic-compile), on top of solc-js: crytic-compile calls the legacy
// command line (`--combined-json abi,ast,... [remap=path ...] file --allow-paths .`) that
// solc-js does not offer; this adapter turns it into a standard-JSON compilation and prints
// the combined-JSON shape crytic-compile reads. Used only by scripts/lint-solidity.sh.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
const remappings = [];
const files = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--combined-json' || a === '--allow-paths' || a === '--base-path' || a === '--evm-version') {
    i++;
  } else if (a.startsWith('--')) {
    continue;
  } else if (a.includes('=')) {
    remappings.push(a);
  } else {
    files.push(a);
  }
}
const sources = {};
for (const f of files) sources[f] = { content: fs.readFileSync(f, 'utf8') };
const input = {
  language: 'Solidity',
  sources,
  settings: {
    remappings,
    optimizer: { enabled: true, runs: 200 },
    outputSelection: {
      '*': {
        '*': ['abi', 'evm.bytecode', 'evm.deployedBytecode', 'evm.methodIdentifiers', 'userdoc', 'devdoc'],
        '': ['ast'],
      },
    },
  },
};
function findImports(p) {
  for (const base of ['.', 'node_modules']) {
    const full = path.resolve(base, p);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, 'utf8') };
  }
  return { error: `not found: ${p}` };
}
const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  process.stderr.write(errors.map((e) => e.formattedMessage).join('\n'));
  process.exit(1);
}
const combined = { contracts: {}, sources: {}, sourceList: Object.keys(out.sources), version: solc.version() };
for (const [file, byName] of Object.entries(out.contracts || {})) {
  for (const [name, c] of Object.entries(byName)) {
    combined.contracts[`${file}:${name}`] = {
      abi: c.abi,
      bin: c.evm.bytecode.object,
      'bin-runtime': c.evm.deployedBytecode.object,
      srcmap: c.evm.bytecode.sourceMap || '',
      'srcmap-runtime': c.evm.deployedBytecode.sourceMap || '',
      hashes: c.evm.methodIdentifiers,
      userdoc: c.userdoc,
      devdoc: c.devdoc,
    };
  }
}
for (const [file, s] of Object.entries(out.sources)) combined.sources[file] = { AST: s.ast, id: s.id };
process.stdout.write(JSON.stringify(combined));
