#!/usr/bin/env node
// A `solc` command-line stand-in built on solc-js, for machines where no native solc can be
// downloaded. It implements only what py-solc-x and ape-solidity call:
//   solc --version
//   solc --standard-json [--base-path DIR] [--include-path DIR]... [--allow-paths ...]
// Imports are resolved against the base path, each include path and the working folder, in
// that order, which matches how the native compiler resolves them.
"use strict";

const fs = require("fs");
const path = require("path");

// Loaded by absolute path: py-solc-x may copy or link this launcher elsewhere.
const solc = require(path.join(__dirname, "..", "node_modules", "solc"));

function parseArguments(argv) {
  const options = { version: false, standardJson: false, searchPaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (argument === "--version") {
      options.version = true;
    } else if (argument === "--standard-json") {
      options.standardJson = true;
    } else if (argument === "--base-path" || argument === "--include-path") {
      options.searchPaths.push(argv[++i]);
    } else if (argument === "--allow-paths") {
      i++; // solc-js reads files only through the callback below, so there is nothing to allow.
    } else {
      process.stderr.write(`solc.js: unsupported argument ${argument}\n`);
      process.exit(2);
    }
  }
  options.searchPaths.push(process.cwd());
  return options;
}

function makeImportCallback(searchPaths) {
  return function findImport(importPath) {
    for (const base of searchPaths) {
      const candidate = path.resolve(base, importPath);
      if (fs.existsSync(candidate)) {
        return { contents: fs.readFileSync(candidate, "utf8") };
      }
    }
    return { error: `File not found in ${searchPaths.join(", ")}: ${importPath}` };
  };
}

function main() {
  const options = parseArguments(process.argv.slice(2));
  if (options.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (!options.standardJson) {
    process.stderr.write("solc.js: only --version and --standard-json are supported\n");
    process.exit(2);
  }
  const input = fs.readFileSync(0, "utf8");
  const output = solc.compile(input, { import: makeImportCallback(options.searchPaths) });
  process.stdout.write(output);
}

main();
