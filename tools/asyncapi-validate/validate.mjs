// Validates an AsyncAPI document with @asyncapi/parser (the AsyncAPI initiative's parser and validator):
//   node tools/asyncapi-validate/validate.mjs contracts/asyncapi.yaml   (after `npm ci` in this folder)
// Prints every diagnostic; exits 1 on any error.
import { Parser } from '@asyncapi/parser';
import fs from 'node:fs';
const parser = new Parser();
const text = fs.readFileSync(process.argv[2], 'utf8');
const { document, diagnostics } = await parser.parse(text);
const bad = diagnostics.filter(d => d.severity === 0);
for (const d of diagnostics) console.log(['error','warning','info','hint'][d.severity], d.code, JSON.stringify(d.path), d.message);
console.log(document ? 'parsed: valid AsyncAPI ' + document.version() : 'INVALID');
process.exit(bad.length || !document ? 1 : 0);
